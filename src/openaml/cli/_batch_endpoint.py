"""``openaml batch-endpoint create/update/show/list/delete/invoke/list-jobs`` (as az ml batch-endpoint)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openaml.cli._common import OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._online_endpoint import QueryOpt, show_result
from openaml.cli._output import info, render

app = typer.Typer(help="Batch endpoints (as az ml batch-endpoint).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")]
_COLUMNS = ["name", "auth_mode", "provisioning_state", "defaults", "scoring_uri"]
_JOB_COLUMNS = ["name", "display_name", "status", "creation_context"]


def _input_type(ml: Any, value: str) -> str:
    """``--input`` without ``--input-type``: a data asset's own type, ``uri_file`` for a local file,
    else ``uri_folder`` (az ml's default)."""
    from pathlib import Path

    if value.startswith("azureml:") and not value.startswith("azureml://"):
        ref = value[len("azureml:"):]
        name, _, label = ref.partition("@")
        name, _, version = name.partition(":")
        return str(ml.data.get(name, version=version or None, label=label or (None if version else "latest")).type)
    return "uri_file" if Path(value).expanduser().is_file() else "uri_folder"


@app.command("create")
@handle_errors
def create(file: Annotated[str | None, typer.Option("--file", "-f", help="Endpoint YAML.")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Create a batch endpoint from a YAML file and/or --name (a file with another kind's $schema is refused)."""
    from openaml.entities import BatchEndpoint, load_entity
    from openaml.entities._batch import load_batch_endpoint
    from openaml.errors import ValidationError

    overrides: list[Any] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    if file:
        ep = load_batch_endpoint(file, params_override=overrides)
    elif name:
        ep = load_entity(BatchEndpoint, data={}, params_override=overrides, kind="batch endpoint")
    else:
        raise ValidationError("give --file endpoint.yml or --name")
    show_result(client(workspace).batch_endpoints.begin_create_or_update(ep).result(), output, query)


@app.command("update")
@handle_errors
def update(name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f")] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Update description, tags or the default deployment (--set defaults.deployment_name=D)."""
    from openaml._yaml import apply_set_overrides
    from openaml.entities import BatchEndpoint, load_entity
    from openaml.entities._batch import load_batch_endpoint
    from openaml.errors import ValidationError

    ml = client(workspace)
    fields: dict[str, Any] = {}
    if file:
        ep = load_batch_endpoint(file, params_override=[{"name": name}] if name else None)
        fields = ep.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        name = ep.name
    if not name:
        raise ValidationError("give --name (or --file)")
    if set_:
        changed = apply_set_overrides(ml.batch_endpoints.get(name).to_dict(), set_)
        for item in set_:
            top = str(item).partition("=")[0].split(".")[0]
            fields[top] = changed.get(top)
    fields["name"] = name
    ep = load_entity(BatchEndpoint, data=fields, kind="batch endpoint")
    show_result(ml.batch_endpoints.begin_create_or_update(ep).result(), output, query)


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Show an endpoint: scoring_uri, defaults.deployment_name."""
    show_result(client(workspace).batch_endpoints.get(name), output, query)


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).batch_endpoints.list(), output, columns=_COLUMNS)


@app.command("delete")
@handle_errors
def delete(name: NameOpt, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
           no_wait: Annotated[bool, typer.Option("--no-wait")] = False, workspace: WorkspaceOpt = None) -> None:
    """Delete an endpoint and its deployments (their jobs stay)."""
    if not yes:
        typer.confirm(f"Delete batch endpoint {name!r} and all its deployments?", abort=True)
    client(workspace).batch_endpoints.begin_delete(name)
    info(f"deleted batch endpoint {name}")


@app.command("invoke")
@handle_errors
def invoke(name: NameOpt,
           input_: Annotated[str | None, typer.Option("--input", "-i", help="Local path, azureml:// URI or "
                                                      "azureml:<data asset>:<version>.")] = None,
           input_type: Annotated[str | None, typer.Option("--input-type", help="uri_folder (default), uri_file "
                                                          "or mltable.")] = None,
           deployment_name: Annotated[str | None, typer.Option("--deployment-name", "-d")] = None,
           output_path: Annotated[str | None, typer.Option("--output-path", help="Where the score output lands "
                                                           "(azureml://datastores/<ds>/paths/<p>).")] = None,
           mini_batch_size: Annotated[int | None, typer.Option("--mini-batch-size")] = None,
           instance_count: Annotated[int | None, typer.Option("--instance-count")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f", help="YAML with inputs: and outputs: maps "
                                                    "(pipeline deployments).")] = None,
           job_name: Annotated[str | None, typer.Option("--job-name")] = None,
           experiment_name: Annotated[str | None, typer.Option("--experiment-name")] = None,
           set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
           query: QueryOpt = None) -> None:
    """Start a batch scoring job; prints the job (follow it with `openaml job stream -n <name>`)."""
    from openaml._yaml import apply_set_overrides, load_yaml_with_lines
    from openaml.entities import Input, Output

    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    if file:
        data, _ = load_yaml_with_lines(file)
        for k, v in ((data or {}).get("inputs") or {}).items():
            inputs[k] = Input(**v) if isinstance(v, dict) else Input(type="string", value=v)
        for k, v in ((data or {}).get("outputs") or {}).items():
            outputs[k] = Output(**(v or {}))
    ml = client(workspace)
    if input_:
        inputs["input_data"] = Input(type=input_type or _input_type(ml, input_), path=input_)
    if output_path:
        outputs["score"] = Output(type="uri_folder", path=output_path)
    overrides: list[dict[str, Any]] = []
    if set_:
        overrides.append(apply_set_overrides({}, set_))
    if mini_batch_size is not None:
        overrides.append({"mini_batch_size": mini_batch_size})
    if instance_count is not None:
        overrides.append({"instance_count": instance_count})
    job = ml.batch_endpoints.invoke(
        name, deployment_name=deployment_name, inputs=inputs or None, outputs=outputs or None,
        params_override=overrides, job_name=job_name, experiment_name=experiment_name)
    show_result(job, output, query)


@app.command("list-jobs")
@handle_errors
def list_jobs(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    """The endpoint's batch scoring jobs."""
    render(client(workspace).batch_endpoints.list_jobs(name), output, columns=_JOB_COLUMNS)
