"""``openaml online-deployment create/update/show/list/delete/get-logs`` (as az ml online-deployment)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from openaml.cli._common import OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._online_endpoint import QueryOpt, show_result
from openaml.cli._output import info, render

app = typer.Typer(help="Managed online deployments (as az ml online-deployment).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Deployment name.")]
EndpointOpt = Annotated[str, typer.Option("--endpoint-name", "--endpoint", "-e", help="Endpoint name.")]
_COLUMNS = ["name", "endpoint_name", "provisioning_state", "instance_count", "instance_type"]


def _wait(poller: Any, no_wait: bool) -> Any:
    return poller._ops.get(poller._name, poller._endpoint) if no_wait else poller.result()


@app.command("create")
@handle_errors
def create(file: Annotated[str, typer.Option("--file", "-f", help="Deployment YAML.")],
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           endpoint_name: Annotated[str | None, typer.Option("--endpoint-name", "--endpoint", "-e")] = None,
           all_traffic: Annotated[bool, typer.Option("--all-traffic", help="Send 100 % of traffic to it.")] = False,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           local: Annotated[bool, typer.Option("--local")] = False,
           skip_script_validation: Annotated[bool, typer.Option("--skip-script-validation")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Create a deployment; waits until it Succeeded (or Failed, with its logs) unless --no-wait."""
    from openaml.entities import ManagedOnlineEndpoint, load_entity
    from openaml.entities._endpoint import ManagedOnlineDeployment, check_schema

    overrides: list[Any] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    if endpoint_name:
        overrides.append({"endpoint_name": endpoint_name})
    check_schema(file, "online deployment")
    dep = load_entity(ManagedOnlineDeployment, file, params_override=overrides, kind="online deployment")
    ml = client(workspace)
    result = _wait(ml.online_deployments.begin_create_or_update(dep), no_wait and not all_traffic)
    if all_traffic:
        ml.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name=str(dep.endpoint_name), traffic={dep.name: 100}))
    show_result(result, output, query)


@app.command("update")
@handle_errors
def update(name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           endpoint_name: Annotated[str | None, typer.Option("--endpoint-name", "--endpoint", "-e")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f")] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Update a deployment (new model, code, instance_count...); workers are replaced one at a time."""
    from openaml._yaml import apply_set_overrides
    from openaml.entities import load_entity
    from openaml.entities._endpoint import ManagedOnlineDeployment, check_schema
    from openaml.errors import ValidationError

    ml = client(workspace)
    overrides: list[Any] = []
    if name:
        overrides.append({"name": name})
    if endpoint_name:
        overrides.append({"endpoint_name": endpoint_name})
    if file:
        check_schema(file, "online deployment")
        dep = load_entity(ManagedOnlineDeployment, file, params_override=[*overrides, *(set_ or [])],
                          kind="online deployment")
    else:
        if not name or not endpoint_name:
            raise ValidationError("give --file, or --name and --endpoint-name with --set key=value")
        current = ml.online_deployments.get(name, endpoint_name)
        fields: dict[str, Any] = {"name": name, "endpoint_name": endpoint_name}
        changed = apply_set_overrides(current.model_dump(mode="json", exclude_none=True), set_)
        for item in set_ or []:
            top = str(item).partition("=")[0].split(".")[0]
            fields[top] = changed.get(top)
        dep = load_entity(ManagedOnlineDeployment, data=fields, kind="online deployment")
    show_result(_wait(ml.online_deployments.begin_create_or_update(dep), no_wait), output, query)


def add_show_list_delete(group: typer.Typer, ops: str, kind: str, columns: list[str], delete_doc: str) -> None:
    """Add the ``show``, ``list`` and ``delete`` commands of a deployment group, online and batch alike
    (as az ml's): ``ops`` is the MLClient operations' name (``online_deployments``), ``kind`` the
    endpoint's kind in messages ("online endpoint")."""

    @group.command("show")
    @handle_errors
    def show(name: NameOpt, endpoint_name: EndpointOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
             query: QueryOpt = None) -> None:
        show_result(getattr(client(workspace), ops).get(name, endpoint_name), output, query)

    @group.command("list")
    @handle_errors
    def list_(endpoint_name: EndpointOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
        render(getattr(client(workspace), ops).list(endpoint_name), output, columns=columns)

    @group.command("delete", help=delete_doc)
    @handle_errors
    def delete(name: NameOpt, endpoint_name: EndpointOpt, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
               no_wait: Annotated[bool, typer.Option("--no-wait")] = False, workspace: WorkspaceOpt = None) -> None:
        if not yes:
            typer.confirm(f"Delete deployment {name!r} of {kind} {endpoint_name!r}?", abort=True)
        getattr(client(workspace), ops).begin_delete(name, endpoint_name)
        info(f"deleted deployment {name} of {kind} {endpoint_name}")


add_show_list_delete(app, "online_deployments", "online endpoint", _COLUMNS,
                     "Delete a deployment (refused while the endpoint still sends it traffic).")


@app.command("get-logs")
@handle_errors
def get_logs(name: NameOpt, endpoint_name: EndpointOpt,
             lines: Annotated[int | None, typer.Option("--lines", "-l", help="Last N lines.")] = None,
             container: Annotated[str | None, typer.Option("--container", help="Accepted (one log here).")] = None,
             workspace: WorkspaceOpt = None) -> None:
    """The deployment's logs: worker output (init, errors, tracebacks) and supervisor events."""
    sys.stdout.write(client(workspace).online_deployments.get_logs(name, endpoint_name, lines=lines))
