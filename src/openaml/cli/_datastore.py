"""``openaml datastore list/show/create``."""

from __future__ import annotations

import typer

from openaml.cli._common import FileOpt, NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import render

app = typer.Typer(help="Datastores.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).datastores.list(), output, columns=["name", "type", "is_default", "path"])


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    render(client(workspace).datastores.get(name), output)


@app.command("create")
@handle_errors
def create(file: FileOpt, set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Register a datastore from YAML (type local with an absolute path; Azure types as metadata)."""
    from openaml.entities import Datastore, load_entity

    ds = load_entity(Datastore, file, params_override=set_, kind="datastore")
    render(client(workspace).datastores.create_or_update(ds), output)
