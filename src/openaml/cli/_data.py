"""``openaml data create/list/show/archive/restore``, as ``az ml data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from openaml.cli._common import (
    LabelOpt,
    NameOpt,
    OutputOpt,
    SetOpt,
    VersionOpt,
    WorkspaceOpt,
    client,
    handle_errors,
    show_warnings,
)
from openaml.cli._output import info, render

app = typer.Typer(help="Data assets: uri_file, uri_folder and mltable (local paths are uploaded).",
                  no_args_is_help=True)

_LIST_COLUMNS = ["name", "version", "type", "path", "description", "created_at"]


@app.command("create")
@handle_errors
def create(file: Annotated[str | None, typer.Option("--file", "-f", help="Data asset YAML.")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n", help="Asset name.")] = None,
           version: Annotated[str | None, typer.Option("--version", "-v",
                                                       help="Version (default: the next integer).")] = None,
           path: Annotated[str | None, typer.Option("--path", "-p", help="Local file/folder, datastore URI or URL.")]
           = None,
           type_: Annotated[str | None, typer.Option("--type", "-t", help="uri_file, uri_folder or mltable.")] = None,
           description: Annotated[str | None, typer.Option("--description", "-d")] = None,
           datastore: Annotated[str | None, typer.Option("--datastore", help="Datastore to upload into.")] = None,
           set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Register a data asset version from YAML and/or flags; a local path is uploaded first.

    Paths inside the YAML are relative to its folder; ``--path`` is relative to the current folder.
    """
    from openaml.datastores import is_url
    from openaml.entities import Data, load_entity
    from openaml.errors import ValidationError

    flags: dict[str, Any] = {}
    if path is not None:
        local = not is_url(path) and not path.startswith("azureml:")
        flags["path"] = str(Path(path).expanduser().resolve()) if local and file else path
    for key, value in (("name", name), ("version", version), ("type", type_), ("description", description),
                       ("datastore", datastore)):
        if value is not None:
            flags[key] = value
    overrides: list[Any] = [*(set_ or []), *({k: v} for k, v in flags.items())]
    if file:
        data = load_entity(Data, file, params_override=overrides, kind="data")
    else:
        if name is None or path is None:
            raise ValidationError("give --file data.yml, or --name and --path (with --type for uri_file/mltable)")
        data = load_entity(Data, data={}, params_override=overrides, kind="data")
    with show_warnings():
        created = client(workspace).data.create_or_update(data, show_progress=True)
    render(created, output)


def _row(d: Any) -> dict[str, Any]:
    row = d.to_dict()
    row["created_at"] = (row.get("creation_context") or {}).get("created_at")
    return row


@app.command("list")
@handle_errors
def list_(name: Annotated[str | None, typer.Option("--name", "-n", help="List every version of this asset.")] = None,
          archived: Annotated[bool, typer.Option("--archived", "--include-archived",
                                                 help="Include archived versions.")] = False,
          archived_only: Annotated[bool, typer.Option("--archived-only", help="Only archived versions.")] = False,
          workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    """The latest version of each asset, or every version of ``--name`` (newest first)."""
    view = "ArchivedOnly" if archived_only else "All" if archived else "ActiveOnly"
    rows = [_row(d) for d in client(workspace).data.list(name, list_view_type=view)]
    columns = _LIST_COLUMNS + (["archived"] if archived or archived_only else [])
    render(rows, output, columns=columns)


@app.command("show")
@handle_errors
def show(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None,
         output: OutputOpt = "json") -> None:
    """One version (``-v``) or the latest (``-l latest``, the default)."""
    render(client(workspace).data.get(name, version=version, label=label), output)


@app.command("archive")
@handle_errors
def archive(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Archive one version, or the whole asset without ``-v`` (hidden from list and latest; still gettable)."""
    client(workspace).data.archive(name, version=version, label=label)
    info(f"archived data {name}" + (f":{version}" if version else "" if not label else f"@{label}"))


@app.command("restore")
@handle_errors
def restore(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Undo ``archive``."""
    client(workspace).data.restore(name, version=version, label=label)
    info(f"restored data {name}" + (f":{version}" if version else "" if not label else f"@{label}"))
