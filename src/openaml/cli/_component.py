"""``openaml component create/list/show/archive/restore`` (``az ml component``)."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import LabelOpt, OutputOpt, SetOpt, VersionOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Components: reusable, versioned command steps for pipelines.", no_args_is_help=True)

_COLUMNS = ["name", "version", "display_name", "is_deterministic", "archived"]
OptName = Annotated[str | None, typer.Option("--name", "-n", help="Name (overrides the YAML's).")]
ReqName = Annotated[str, typer.Option("--name", "-n", help="Component name.")]
RegistryOpt = Annotated[str | None, typer.Option("--registry-name", help="Read from a registry (azureml: the "
                                                 "built-in Responsible AI components) instead of the workspace.")]


def _client(workspace: str | None, registry_name: str | None) -> object:
    from openaml.sdk import MLClient

    return MLClient(workspace=workspace, registry_name=registry_name) if registry_name else client(workspace)


@app.command("create")
@handle_errors
def create(file: Annotated[str, typer.Option("--file", "-f", help="Component YAML.")],
           name: OptName = None, version: VersionOpt = None, set_: SetOpt = None,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Register a component version from YAML; its code folder is uploaded (``az ml component create``)."""
    from openaml._load import load_component

    overrides: list[object] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    if version:
        overrides.append({"version": version})
    comp = load_component(file, params_override=overrides)
    render(client(workspace).components.create_or_update(comp, progress=True), output)


@app.command("list")
@handle_errors
def list_(name: OptName = None,
          include_archived: Annotated[bool, typer.Option("--include-archived")] = False,
          archived_only: Annotated[bool, typer.Option("--archived-only")] = False,
          registry_name: RegistryOpt = None,
          workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    """The latest version of each component, or every version of ``--name``."""
    view = "ArchivedOnly" if archived_only else "All" if include_archived else None
    comps = _client(workspace, registry_name).components.list(name, list_view_type=view)  # type: ignore[attr-defined]
    render(comps, output, columns=_COLUMNS)


@app.command("show")
@handle_errors
def show(name: ReqName, version: VersionOpt = None, label: LabelOpt = None, registry_name: RegistryOpt = None,
         workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    comp = _client(workspace, registry_name).components.get(name, version=version, label=label)  # type: ignore[attr-defined]
    render(comp, output)


@app.command("archive")
@handle_errors
def archive(name: ReqName, version: VersionOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Hide a version (or every version) from list and @latest; name:version keeps working."""
    client(workspace).components.archive(name, version=version)
    info(f"archived component {name}" + (f":{version}" if version else " (all versions)"))


@app.command("restore")
@handle_errors
def restore(name: ReqName, version: VersionOpt = None, workspace: WorkspaceOpt = None) -> None:
    client(workspace).components.restore(name, version=version)
    info(f"restored component {name}" + (f":{version}" if version else " (all versions)"))
