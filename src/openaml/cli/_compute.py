"""``openaml compute create/list/show/delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from openaml.cli._common import NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Computes (local process pools; max_instances = concurrent job slots).", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(file: Annotated[str | None, typer.Option("--file", "-f")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           type_: Annotated[str | None, typer.Option("--type", "-t")] = None,
           size: Annotated[str | None, typer.Option("--size")] = None,
           min_instances: Annotated[int | None, typer.Option("--min-instances")] = None,
           max_instances: Annotated[int | None, typer.Option("--max-instances")] = None,
           set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Create a compute from YAML (amlcompute) or flags, as ``az ml compute create``."""
    from openaml.entities._compute import load_compute

    data: dict = {}
    for key, value in (("name", name), ("type", type_), ("size", size), ("min_instances", min_instances),
                       ("max_instances", max_instances)):
        if value is not None:
            data[key] = value
    # an error in a flag's value names the flag (--max-instances 0), not params_override or the file's line
    labels = {k: f"--{k.replace('_', '-')} {v}" for k, v in data.items()}
    if file:
        compute = load_compute(file, params_override=[*(set_ or []), *[{k: v} for k, v in data.items()]],
                               override_labels=labels)
    else:
        if "name" not in data:
            from openaml.errors import ValidationError

            raise ValidationError("give --file or --name")
        compute = load_compute(data={"type": "amlcompute", **data}, params_override=set_, override_labels=labels)
    render(client(workspace).compute.begin_create_or_update(compute).result(), output)


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).compute.list(), output,
           columns=["name", "type", "size", "max_instances", "running_jobs", "queued_jobs", "provisioning_state"])


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    render(client(workspace).compute.get(name), output)


@app.command("delete")
@handle_errors
def delete(name: NameOpt, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
           workspace: WorkspaceOpt = None) -> None:
    client(workspace).compute.begin_delete(name).result()
    info(f"deleted compute {name}")
