"""``openaml environment create/list/show/archive/restore/build`` (``az ml environment`` + build)."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import LabelOpt, OutputOpt, SetOpt, VersionOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Environments: curated names, image + conda file, build contexts.", no_args_is_help=True)

_COLUMNS = ["name", "version", "image", "build_status", "archived"]
OptName = Annotated[str | None, typer.Option("--name", "-n", help="Name (overrides the YAML's).")]
ReqName = Annotated[str, typer.Option("--name", "-n", help="Environment name.")]


@app.command("create")
@handle_errors
def create(
    file: Annotated[str | None, typer.Option("--file", "-f", help="Environment YAML.")] = None,
    name: OptName = None,
    version: VersionOpt = None,
    image: Annotated[str | None, typer.Option("--image", "-i", help="Docker image.")] = None,
    conda_file: Annotated[str | None, typer.Option("--conda-file", help="Conda YAML file.")] = None,
    build_context: Annotated[str | None, typer.Option("--build-context", help="Docker build context folder.")] = None,
    dockerfile_path: Annotated[str | None, typer.Option("--dockerfile-path", help="Dockerfile in the context.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="Description.")] = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
    output: OutputOpt = "json",
) -> None:
    """Register a new environment version from YAML and/or options (the version auto-increments)."""
    from openaml.entities import Environment, load_entity

    overrides: list[dict[str, object]] = []
    for key, value in (("name", name), ("version", version), ("image", image), ("conda_file", conda_file),
                       ("description", description)):
        if value is not None:
            overrides.append({key: value})
    if build_context is not None:
        overrides.append({"build.path": build_context})
    if dockerfile_path is not None:
        overrides.append({"build.dockerfile_path": dockerfile_path})
    if file:
        env = load_entity(Environment, file, params_override=[*(set_ or []), *overrides], kind="environment")
    else:
        env = load_entity(Environment, data={}, params_override=[*(set_ or []), *overrides], kind="environment")
    render(client(workspace).environments.create_or_update(env), output)


@app.command("list")
@handle_errors
def list_(
    name: OptName = None,
    include_archived: Annotated[bool, typer.Option("--include-archived", help="Show archived versions too.")] = False,
    archived_only: Annotated[bool, typer.Option("--archived-only", help="Show only archived versions.")] = False,
    workspace: WorkspaceOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Latest version of each environment, or every version of --name."""
    view = "ArchivedOnly" if archived_only else ("All" if include_archived else "ActiveOnly")
    render(client(workspace).environments.list(name, list_view_type=view), output, columns=_COLUMNS)


@app.command("show")
@handle_errors
def show(name: ReqName, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None,
         output: OutputOpt = "json") -> None:
    """One version (default: the latest): build_status (built / not built / base), the Python asked for and
    used, the resolved lock (exact versions installed, once built) and every deviation (asked vs got)."""
    render(client(workspace).environments.get(name, version=version, label=label), output)


@app.command("archive")
@handle_errors
def archive(name: ReqName, version: VersionOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Archive a version (or every version without --version)."""
    client(workspace).environments.archive(name, version=version)
    info(f"archived environment {name}" + (f":{version}" if version else " (all versions)"))


@app.command("restore")
@handle_errors
def restore(name: ReqName, version: VersionOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Restore an archived version (or every version without --version)."""
    client(workspace).environments.restore(name, version=version)
    info(f"restored environment {name}" + (f":{version}" if version else " (all versions)"))


@app.command("build")
@handle_errors
def build(name: ReqName, version: VersionOpt = None, label: LabelOpt = None, workspace: WorkspaceOpt = None,
          output: OutputOpt = "json") -> None:
    """openaml extra: build the environment's virtualenv now, so its jobs start without waiting."""
    result = client(workspace).environments.build(name, version=version, label=label)
    for w in result.get("warnings") or []:
        info(f"[yellow]WARNING:[/] {w}")
    render(result, output)
