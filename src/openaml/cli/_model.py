"""``openaml model create/list/show/download/archive/restore`` (as ``az ml model``)."""

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
)
from openaml.cli._output import info, render

app = typer.Typer(help="Models (custom_model, mlflow_model), stored in the workspace's MLflow model registry.",
                  no_args_is_help=True)

_COLUMNS = ["name", "version", "type", "description", "archived", "job_name"]


@app.command("create")
@handle_errors
def create(file: Annotated[str | None, typer.Option("--file", "-f", help="Model YAML file.")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           version: Annotated[str | None, typer.Option("--version", "-v", help="A new integer; default: next.")] = None,
           path: Annotated[str | None, typer.Option("--path", "-p", help="Local file/folder or azureml://, runs:/ URI.")]
           = None,
           type_: Annotated[str | None, typer.Option("--type", "-t", help="custom_model (default) or mlflow_model.")]
           = None,
           description: Annotated[str | None, typer.Option("--description", "-d")] = None,
           tags: Annotated[list[str] | None, typer.Option("--tags", help="key=value (repeatable).")] = None,
           set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Register a model version from a YAML file and/or flags (flags override the file's fields)."""
    from openaml.entities import Model, load_entity
    from openaml.errors import ValidationError

    fields: dict[str, Any] = {}
    for key, value in (("name", name), ("version", version), ("path", path), ("type", type_),
                       ("description", description)):
        if value is not None:
            fields[key] = value
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise ValidationError(f"--tags {tag!r}: expected key=value")
        fields.setdefault("tags", {})[key] = value
    overrides: list[Any] = [*_tags_as_typed(set_), *[{k: v} for k, v in fields.items()]]
    if file:
        model = load_entity(Model, file, params_override=overrides, kind="model")
    else:
        if "name" not in fields or "path" not in fields:
            raise ValidationError("give --file model.yml, or --name and --path (e.g. openaml model create "
                                  "--name my-model --path ./model --type mlflow_model)")
        model = load_entity(Model, data={}, params_override=overrides, relative_origin=Path.cwd(), kind="model")
    render(client(workspace).models.create_or_update(model), output)


@app.command("list")
@handle_errors
def list_(name: Annotated[str | None, typer.Option("--name", "-n", help="List this model's versions.")] = None,
          include_archived: Annotated[bool, typer.Option("--include-archived")] = False,
          archived_only: Annotated[bool, typer.Option("--archived-only")] = False,
          workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    """The latest version of every model, or every version of one model (-n)."""
    view = "ArchivedOnly" if archived_only else "All" if include_archived else "ActiveOnly"
    render(client(workspace).models.list(name, list_view_type=view), output, columns=_COLUMNS)


@app.command("show")
@handle_errors
def show(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None,
         output: OutputOpt = "json") -> None:
    """Show one version (-v) or the latest active one (-l latest)."""
    render(client(workspace).models.get(name, version=version, label=label), output)


@app.command("download")
@handle_errors
def download(name: NameOpt,
             version: Annotated[str, typer.Option("--version", "-v")],
             download_path: Annotated[str, typer.Option("--download-path", "-p",
                                                        help="Folder; files land under <folder>/<name>/.")] = ".",
             workspace: WorkspaceOpt = None) -> None:
    """Download a version's files to <download-path>/<name>/ (as az ml model download)."""
    client(workspace).models.download(name, version, download_path=download_path)
    info(f"downloaded model {name}:{version} to {Path(download_path) / name}")


def _tags_as_typed(set_: list[str] | None) -> list[Any]:
    """``--set tags.<key>=<text>`` (and ``description``, ``stage``) keeps the text as typed: they are
    strings in Azure ML, so ``true`` stays ``true``, not YAML's boolean written back as ``True``
    (review16 F11); other ``--set`` items as given."""
    out: list[Any] = []
    for item in set_ or []:
        key, sep, raw = str(item).partition("=")
        text = sep and (key.strip().startswith("tags.") or key.strip() in ("description", "stage"))
        out.append({key.strip(): raw} if text else item)
    return out


def _flat_tags(tags: Any, prefix: str = "") -> dict[str, str]:
    """``--set tags.rai.scorecard=x`` arrives nested ({"rai": {"scorecard": "x"}}): tag keys keep their dots."""
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if isinstance(value, dict):
            out.update(_flat_tags(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = "" if value is None else str(value)
    return out


@app.command("update")
@handle_errors
def update(name: NameOpt, version: Annotated[str, typer.Option("--version", "-v")], set_: SetOpt = None,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Change a version's tags, description or stage (``--set tags.rai.scorecard=<job>/<output>``,
    ``--set stage=Production``); the workspace's RAI gate may refuse a protected tag or stage."""
    from openaml._yaml import apply_set_overrides
    from openaml.errors import ValidationError

    fields = apply_set_overrides({}, _tags_as_typed(set_))
    unknown = sorted(set(fields) - {"tags", "description", "stage"})
    if unknown or not fields:
        raise ValidationError(f"--set {unknown[0] if unknown else ''}: model update changes tags.<key>, description "
                              "or stage (a version's files and number never change)")
    render(client(workspace).models.update(name, version, tags=_flat_tags(fields.get("tags")) or None,
                                           description=fields.get("description"), stage=fields.get("stage")), output)


@app.command("archive")
@handle_errors
def archive(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Archive a version, or every version of the model when no -v is given."""
    client(workspace).models.archive(name, version=version, label=label)
    info(f"archived model {name}" + (f":{version}" if version else ""))


@app.command("restore")
@handle_errors
def restore(name: NameOpt, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Restore an archived version, or every version of the model."""
    client(workspace).models.restore(name, version=version, label=label)
    info(f"restored model {name}" + (f":{version}" if version else ""))
