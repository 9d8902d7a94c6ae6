"""``openaml datastore list/show/create/delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import FileOpt, NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors, show_warnings
from openaml.cli._output import info, render

app = typer.Typer(help="Datastores: where files live (local folders, S3 buckets, Azure Blob containers).",
                  no_args_is_help=True)


#: what ``datastore create --help`` says: which types hold files here (openaml.datastores.BACKENDS)
CREATE_HELP = (
    "Register a datastore from YAML: local, s3 or azure_blob (their files are read and written here).\n\n"
    "local is a folder of the server (an absolute path), s3 a bucket of an S3 API (AWS, MinIO, ...), azure_blob "
    "a blob container of Azure Storage or Azurite. fsspec (a URL read from your own Python) and azure_file, "
    "azure_data_lake_gen1 and azure_data_lake_gen2 are kept as metadata: registered and shown, but jobs "
    "cannot use their files here. Credentials are stored encrypted and never shown back.\n\n"
    "An s3 or azure_blob datastore is checked with one listing call first (refused, nothing stored, when it "
    "fails), unless --skip-validation.")
DELETE_HELP = (
    "Remove a datastore's registration, as az ml datastore delete: its files stay where they are.\n\n"
    "Refused for workspaceblobstore, for the default datastore (make another the default first) and for one "
    "that data asset versions still use (archive them first).")


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).datastores.list(), output, columns=["name", "type", "is_default", "path"])


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    render(client(workspace).datastores.get(name), output)


@app.command("create", help=CREATE_HELP)
@handle_errors
def create(file: FileOpt, set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
           skip_validation: Annotated[bool, typer.Option(
               "--skip-validation", help="register an s3/azure_blob datastore without checking that it answers "
               "(an endpoint only the jobs' machines reach)")] = False) -> None:
    """Register a datastore from YAML (help: :data:`CREATE_HELP`)."""
    from openaml.entities._datastore import load_datastore

    ds = load_datastore(file, params_override=set_)
    with show_warnings():
        made = client(workspace).datastores.create_or_update(ds, skip_validation=skip_validation)
    render(made, output)


@app.command("delete", help=DELETE_HELP)
@handle_errors
def delete(name: NameOpt, workspace: WorkspaceOpt = None) -> None:
    """Remove a datastore's registration (help: :data:`DELETE_HELP`)."""
    client(workspace).datastores.delete(name)
    info(f"deleted datastore {name}")
