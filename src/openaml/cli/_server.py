"""``openaml server``: serve a workspace; ``server stop``; ``server status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from openaml.cli._common import handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Run or stop a workspace server.", invoke_without_command=True)


def _workspace_path(workspace: str | None) -> Path:
    from openaml.workspace import discover

    target = discover(workspace)
    if target.path is None:
        from openaml.errors import ValidationError

        raise ValidationError(f"{workspace} is a URL; the server command needs a local workspace folder")
    return target.path


@app.callback()
@handle_errors
def serve(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Workspace folder or name.")] = None,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 0,
    token: Annotated[str | None, typer.Option(
        help="Bearer token required on every request (visible in `ps`: prefer --token-file or OPENAML_TOKEN).")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file",
                                                    help="File holding the bearer token (first line).")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url",
                                                     help="Metadata DB URL (PostgreSQL); SQLite in the workspace by default.",
                                                     envvar="OPENAML_DATABASE_URL")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Also accept this Host name (repeatable; '*' accepts any). "
        "Loopback names and --host are always accepted.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM): serve HTTPS.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
    header_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send its headers.")] = 10.0,
    body_timeout: Annotated[float, typer.Option(help="Seconds a request body may stall.")] = 60.0,
    keep_alive: Annotated[float, typer.Option(help="Seconds an idle keep-alive connection stays open.")] = 5.0,
    max_connections: Annotated[int, typer.Option(help="Connections served at once; more get 503.")] = 1000,
    datastore_root: Annotated[list[Path] | None, typer.Option(
        "--datastore-root", help="Allow local datastores under this folder (repeatable; default: the workspace "
        "folder and your home; also OPENAML_DATASTORE_ROOTS, separated by ':').")] = None,
    tracking_url: Annotated[str | None, typer.Option(
        "--tracking-url", envvar="OPENAML_TRACKING_URL",
        help="MLflow backend store URL; default: the metadata DB's PostgreSQL (schema mlflow), else SQLite in the workspace.",
    )] = None,
    heartbeat_timeout: Annotated[float, typer.Option(
        "--heartbeat-timeout", envvar="OPENAML_HEARTBEAT_TIMEOUT",
        help="Seconds without a report from a job's runner before the job is failed as lost (0: never).")] = 60.0,
) -> None:
    """Serve a workspace (REST API, MLflow at /mlflow, job scheduler) until stopped."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = workspace
        return
    from openaml._settings import HttpLimits, Settings
    from openaml.errors import ValidationError
    from openaml.server._serve import serve as run

    if token is not None and token_file is not None:
        raise ValidationError("give --token or --token-file, not both")
    if token is not None:
        info("WARNING: --token shows in `ps` to every user of this machine; prefer --token-file FILE or OPENAML_TOKEN")
    elif token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeError) as exc:
            raise ValidationError(f"--token-file {token_file}: cannot read a token ({exc})") from None
    else:
        token = os.environ.get("OPENAML_TOKEN") or None
    limits = HttpLimits(header_timeout=header_timeout, body_timeout=body_timeout, keep_alive=keep_alive,
                        max_connections=max_connections)
    roots = list(datastore_root or []) or [Path(p) for p in os.environ.get("OPENAML_DATASTORE_ROOTS", "").split(
        os.pathsep) if p]
    run(Settings(workspace=_workspace_path(workspace), host=host, port=port, token=token,
                 database_url=database_url, allowed_hosts=list(allowed_host or []), tracking_url=tracking_url,
                 ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, limits=limits, datastore_roots=roots,
                 token_file=token_file, heartbeat_timeout=heartbeat_timeout))


@app.command("stop")
@handle_errors
def stop(ctx: typer.Context,
         workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None) -> None:
    """Stop the workspace's server (its running jobs are reconciled at the next start)."""
    from openaml.server._serve import stop_server
    from openaml.workspace import WorkspaceLayout

    path = _workspace_path(workspace or ctx.obj)
    pid = stop_server(WorkspaceLayout(path))
    info(f"stopped server pid {pid}" if pid else f"no server running for {path}")


@app.command("status")
@handle_errors
def status(ctx: typer.Context,
           workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None) -> None:
    """Show the running server of the workspace (url, pid) or nothing."""
    from openaml.workspace import WorkspaceLayout, read_server_info

    path = _workspace_path(workspace or ctx.obj)
    info = read_server_info(WorkspaceLayout(path))
    render({"running": True, **info} if info else {"running": False, "workspace": str(path)})


_ = os
