"""``openaml workspace create/list/show/delete``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openaml.cli._common import OutputOpt, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Manage workspaces (each is one folder).", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(name: Annotated[str, typer.Option("--name", "-n")],
           path: Annotated[str | None, typer.Option("--path", "-p", help="Folder (default: $OPENAML_HOME/workspaces/NAME).")] = None,
           description: Annotated[str | None, typer.Option("--description")] = None,
           database_url: Annotated[str | None, typer.Option(
               "--database-url", help="PostgreSQL URL for the metadata and MLflow's runs and registry "
               "(postgresql+psycopg://user:pw@host/db); a database that holds this workspace already is joined "
               "(another host serving it). Default: SQLite files in the folder.")] = None,
           tracking_url: Annotated[str | None, typer.Option(
               "--tracking-url", help="Another database for MLflow's runs and registry (default: --database-url, "
               "schema mlflow).")] = None,
           secret_key_file: Annotated[Path | None, typer.Option(
               "--secret-key-file", help="Joining a workspace: its secret.key (from one of its folders).")] = None,
           output: OutputOpt = "json") -> None:
    """Create a workspace folder (its metadata in the folder, or in PostgreSQL with --database-url)."""
    from openaml.errors import ValidationError
    from openaml.workspace import create_workspace, create_workspace_on_database

    if database_url is None and (tracking_url or secret_key_file):
        raise ValidationError("--tracking-url and --secret-key-file go with --database-url")
    if database_url is not None:
        layout = create_workspace_on_database(name, path, database_url, tracking_url=tracking_url,
                                              secret_key_file=secret_key_file, description=description)
    else:
        layout = create_workspace(name, path, description=description)
    render({**layout.info(), "path": str(layout.root)}, output)


@app.command("list")
@handle_errors
def list_(output: OutputOpt = "table") -> None:
    """List known workspaces."""
    from openaml.workspace import list_workspaces

    rows = [{"name": w["name"], "path": w["path"], "server": (w["server"] or {}).get("url", "")}
            for w in list_workspaces()]
    render(rows, output, columns=["name", "path", "server"])


@app.command("show")
@handle_errors
def show(name: Annotated[str | None, typer.Option("--name", "-n", help="Workspace name, folder or URL.")] = None,
         workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
         output: OutputOpt = "json") -> None:
    """Show a workspace, including its mlflow_tracking_uri (starts its server if needed)."""
    from openaml.sdk import MLClient

    with MLClient(workspace=name or workspace) as ml:
        render(ml.workspaces.get(), output)


@app.command("update")
@handle_errors
def update(set_: Annotated[list[str] | None, typer.Option("--set", help="rai_gate.<field>=value (repeatable).")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n", help="Workspace name, folder or URL.")] = None,
           workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
           output: OutputOpt = "json") -> None:
    """Change workspace settings: the RAI gate on promotion (``--set rai_gate.require=pass --set
    rai_gate.protected_tags=[production]``; ``rai_gate.require=none`` turns it off)."""
    from openaml._yaml import apply_set_overrides
    from openaml.errors import ValidationError
    from openaml.sdk import MLClient

    fields = apply_set_overrides({}, set_)
    unknown = sorted(set(fields) - {"rai_gate"})
    if unknown or not isinstance(fields.get("rai_gate"), dict):
        raise ValidationError(f"--set {unknown[0] if unknown else 'rai_gate'}: workspace update sets "
                              "rai_gate.<field>=value (require, protected_tags, protected_stages, deployments)")
    with MLClient(workspace=name or workspace) as ml:
        render({"rai_gate": ml.workspaces.update_rai_gate(**fields["rai_gate"])}, output)


@app.command("delete")
@handle_errors
def delete(name: Annotated[str, typer.Option("--name", "-n")],
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
           keep_files: Annotated[bool, typer.Option("--keep-files", help="Forget it but keep the folder.")] = False) -> None:
    """Delete a workspace and its folder (its server must be stopped)."""
    from openaml.workspace import delete_workspace, get_workspace_path

    path = get_workspace_path(name)
    if not yes:
        typer.confirm(f"Delete workspace {name!r} and everything in {path}?", abort=True)
    delete_workspace(name, delete_files=not keep_files)
    info(f"deleted workspace {name} ({path})")


@app.command("login")
@handle_errors
def login(url: Annotated[str, typer.Option("--url", help="The server URL the token was issued for.")],
          token_file: Annotated[str | None, typer.Option("--token-file", help="File holding the token "
                                                         "(else OPENAML_TOKEN, else a prompt).")] = None) -> None:
    """Save a server's token in $OPENAML_HOME/credentials.json (0600); it is sent to that URL only."""
    import os
    from pathlib import Path

    from openaml._credentials import save_token
    from openaml.errors import ValidationError

    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeError) as exc:
            raise ValidationError(f"--token-file {token_file}: cannot read a token ({exc})") from None
    else:
        token = os.environ.get("OPENAML_TOKEN") or typer.prompt("token", hide_input=True)
    path = save_token(url, token.strip())
    info(f"saved the token for {url} in {path}")


@app.command("logout")
@handle_errors
def logout(url: Annotated[str, typer.Option("--url", help="The server URL.")]) -> None:
    """Forget the token saved for a server URL."""
    from openaml._credentials import forget_token

    info(f"forgot the token for {url}" if forget_token(url) else f"no token saved for {url}")
