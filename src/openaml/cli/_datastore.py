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
    """Register a datastore from YAML: local (an absolute path), fsspec, or any Azure type (azure_blob,
    azure_file, azure_data_lake_gen1, azure_data_lake_gen2), kept as metadata with its credentials."""
    from openaml.entities._datastore import load_datastore

    ds = load_datastore(file, params_override=set_)
    render(client(workspace).datastores.create_or_update(ds), output)
