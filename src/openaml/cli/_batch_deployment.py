"""``openaml batch-deployment create/update/show/list/delete`` (as az ml batch-deployment)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openaml.cli._common import OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._online_deployment import EndpointOpt, NameOpt, add_show_list_delete
from openaml.cli._online_endpoint import QueryOpt, show_result
from openaml.cli._output import render

app = typer.Typer(help="Batch deployments (as az ml batch-deployment).", no_args_is_help=True)

_COLUMNS = ["name", "endpoint_name", "type", "model", "compute", "provisioning_state"]
_JOB_COLUMNS = ["name", "display_name", "status", "creation_context"]


def _set_default(ml: Any, endpoint_name: str, name: str) -> None:
    from openaml.entities import BatchEndpoint, BatchEndpointDefaults

    ml.batch_endpoints.begin_create_or_update(
        BatchEndpoint(name=endpoint_name, defaults=BatchEndpointDefaults(deployment_name=name)))


@app.command("create")
@handle_errors
def create(file: Annotated[str, typer.Option("--file", "-f", help="Deployment YAML (type: model, flat, or "
                                                                  "type: pipeline).")],
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           endpoint_name: Annotated[str | None, typer.Option("--endpoint-name", "--endpoint", "-e")] = None,
           set_default: Annotated[bool, typer.Option("--set-default", help="Make it the endpoint's default "
                                                     "deployment.")] = False,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Create a deployment: its model is registered, its settings checked; nothing runs until an invoke."""
    from openaml.entities._batch import load_batch_deployment

    overrides: list[Any] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    if endpoint_name:
        overrides.append({"endpoint_name": endpoint_name})
    dep = load_batch_deployment(file, params_override=overrides)
    ml = client(workspace)
    result = ml.batch_deployments.begin_create_or_update(dep).result()
    if set_default:
        _set_default(ml, str(dep.endpoint_name), dep.name)
    show_result(result, output, query)


@app.command("update")
@handle_errors
def update(name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           endpoint_name: Annotated[str | None, typer.Option("--endpoint-name", "--endpoint", "-e")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f")] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Update a deployment from a file, or change fields with --set (e.g. --set mini_batch_size=20)."""
    from openaml._yaml import apply_set_overrides
    from openaml.entities._batch import BatchDeployment, PipelineComponentBatchDeployment, load_batch_deployment
    from openaml.errors import ValidationError

    ml = client(workspace)
    overrides: list[Any] = []
    if name:
        overrides.append({"name": name})
    if endpoint_name:
        overrides.append({"endpoint_name": endpoint_name})
    dep: Any
    if file:
        dep = load_batch_deployment(file, params_override=[*overrides, *(set_ or [])])
    else:
        if not name or not endpoint_name:
            raise ValidationError("give --file, or --name and --endpoint-name with --set key=value")
        current = ml.batch_deployments.get(name, endpoint_name)
        if not isinstance(current, PipelineComponentBatchDeployment):  # a type: model file's settings.<field>
            set_ = [str(i)[len("settings."):] if str(i).startswith("settings.") else i for i in set_ or []]
        changed = apply_set_overrides(current.model_dump(mode="json", exclude_none=True), set_)
        fields: dict[str, Any] = {"name": name, "endpoint_name": endpoint_name}
        for item in set_ or []:
            top = str(item).partition("=")[0].split(".")[0]
            fields[top] = changed.get(top)
        cls: Any = PipelineComponentBatchDeployment if isinstance(current, PipelineComponentBatchDeployment) \
            else BatchDeployment
        if cls is PipelineComponentBatchDeployment:
            fields = {**current.model_dump(mode="json", exclude_none=True, exclude=set(cls._server_fields)), **fields}
        dep = cls.model_validate(fields)
    show_result(ml.batch_deployments.begin_create_or_update(dep).result(), output, query)


add_show_list_delete(app, "batch_deployments", "batch endpoint", _COLUMNS,
                     "Delete a deployment (the endpoint's default is cleared when it was this one).")


@app.command("list-jobs")
@handle_errors
def list_jobs(name: NameOpt, endpoint_name: EndpointOpt, workspace: WorkspaceOpt = None,
              output: OutputOpt = "table") -> None:
    """The deployment's batch scoring jobs."""
    render(client(workspace).batch_deployments.list_jobs(endpoint_name, name=name), output, columns=_JOB_COLUMNS)
