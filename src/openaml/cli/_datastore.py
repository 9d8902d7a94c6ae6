"""``openaml datastore list/show/create``."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import FileOpt, NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors, show_warnings
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
def create(file: FileOpt, set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
           skip_validation: Annotated[bool, typer.Option(
               "--skip-validation", help="register an s3/azure_blob datastore without checking that it answers "
               "(an endpoint only the jobs' machines reach)")] = False) -> None:
    """Register a datastore from YAML: local (an absolute path), fsspec, or any Azure type (azure_blob,
    azure_file, azure_data_lake_gen1, azure_data_lake_gen2), kept as metadata with its credentials.
    An s3 or azure_blob datastore is checked with one listing call first (refused, nothing stored, when
    it fails), unless --skip-validation."""
    from openaml.entities._datastore import load_datastore

    ds = load_datastore(file, params_override=set_)
    with show_warnings():
        made = client(workspace).datastores.create_or_update(ds, skip_validation=skip_validation)
    render(made, output)
