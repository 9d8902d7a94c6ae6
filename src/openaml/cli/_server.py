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
    token: Annotated[str | None, typer.Option(help="Bearer token required on every request.",
                                              envvar="OPENAML_TOKEN")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url",
                                                     help="Metadata DB URL (PostgreSQL); SQLite in the workspace by default.",
                                                     envvar="OPENAML_DATABASE_URL")] = None,
    tracking_url: Annotated[str | None, typer.Option(
        "--tracking-url", envvar="OPENAML_TRACKING_URL",
        help="MLflow backend store URL; default: the metadata DB's PostgreSQL (schema mlflow), else SQLite in the workspace.",
    )] = None,
) -> None:
    """Serve a workspace (REST API, MLflow at /mlflow, job scheduler) until stopped."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = workspace
        return
    from openaml._settings import Settings
    from openaml.server._serve import serve as run

    run(Settings(workspace=_workspace_path(workspace), host=host, port=port, token=token,
                 database_url=database_url, tracking_url=tracking_url))


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
    render(read_server_info(WorkspaceLayout(path)) or {"running": False, "workspace": str(path)})


_ = os
