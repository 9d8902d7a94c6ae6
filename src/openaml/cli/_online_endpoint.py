"""``openaml online-endpoint create/update/show/list/delete/invoke/get-credentials/regenerate-keys``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from openaml.cli._common import OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Managed online endpoints (as az ml online-endpoint).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="A field path to print (e.g. scoring_uri, traffic).")]
_COLUMNS = ["name", "auth_mode", "provisioning_state", "traffic", "scoring_uri"]


def parse_traffic(text: str, flag: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (spaces or commas) -> ``{"blue": 90, "green": 10}``."""
    from openaml.errors import ValidationError

    out: dict[str, int] = {}
    for part in text.replace(",", " ").split():
        name, sep, value = part.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise ValidationError(f"{flag} {text!r}: expected name=percent pairs, e.g. \"blue=90 green=10\"")
        out[name] = int(value)
    return out


def show_result(obj: Any, output: str, query: str | None) -> None:
    if query:
        data = obj.to_dict() if hasattr(obj, "to_dict") else obj
        for part in query.split("."):
            data = data.get(part) if isinstance(data, dict) else None
        if output == "tsv" or isinstance(data, str):
            sys.stdout.write(("" if data is None else str(data)) + "\n")
            return
        render(data, output)
        return
    render(obj, output)


@app.command("create")
@handle_errors
def create(file: Annotated[str | None, typer.Option("--file", "-f", help="Endpoint YAML.")] = None,
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           auth_mode: Annotated[str | None, typer.Option("--auth-mode", help="key or aml_token.")] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           local: Annotated[bool, typer.Option("--local", help="Accepted; every endpoint is local here.")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Create an endpoint from a YAML file and/or flags."""
    from openaml.entities import ManagedOnlineEndpoint, load_entity
    from openaml.entities._endpoint import check_schema
    from openaml.errors import ValidationError

    overrides: list[Any] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    if auth_mode:
        overrides.append({"auth_mode": auth_mode})
    if file:
        check_schema(file, "online endpoint")
        ep = load_entity(ManagedOnlineEndpoint, file, params_override=overrides, kind="online endpoint")
    elif name:
        ep = load_entity(ManagedOnlineEndpoint, data={}, params_override=overrides, kind="online endpoint")
    else:
        raise ValidationError("give --file endpoint.yml or --name")
    show_result(client(workspace).online_endpoints.begin_create_or_update(ep).result(), output, query)


@app.command("update")
@handle_errors
def update(name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f")] = None,
           traffic: Annotated[str | None, typer.Option("--traffic", "-r", help='"blue=90 green=10"')] = None,
           mirror_traffic: Annotated[str | None, typer.Option("--mirror-traffic", help='"green=10"')] = None,
           set_: SetOpt = None, no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Update traffic, mirror traffic, tags, description (--set key.path=value) or fields from a file."""
    from openaml._yaml import apply_set_overrides
    from openaml.entities import ManagedOnlineEndpoint, load_entity
    from openaml.entities._endpoint import check_schema
    from openaml.errors import ValidationError

    ml = client(workspace)
    fields: dict[str, Any] = {}
    if file:
        check_schema(file, "online endpoint")
        ep = load_entity(ManagedOnlineEndpoint, file, params_override=[{"name": name}] if name else None,
                         kind="online endpoint")
        fields = ep.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        name = ep.name
    if not name:
        raise ValidationError("give --name (or --file)")
    if set_:
        current = ml.online_endpoints.get(name).to_dict()
        changed = apply_set_overrides(dict(current), set_)
        for item in set_:
            top = str(item).partition("=")[0].split(".")[0]
            fields[top] = changed.get(top)
    if traffic is not None:
        fields["traffic"] = parse_traffic(traffic, "--traffic")
    if mirror_traffic is not None:
        fields["mirror_traffic"] = parse_traffic(mirror_traffic, "--mirror-traffic")
    fields["name"] = name
    ep = load_entity(ManagedOnlineEndpoint, data=fields, kind="online endpoint")
    show_result(ml.online_endpoints.begin_create_or_update(ep).result(), output, query)


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json", query: QueryOpt = None) -> None:
    """Show an endpoint: scoring_uri, swagger_uri, provisioning_state, traffic."""
    show_result(client(workspace).online_endpoints.get(name), output, query)


@app.command("list")
@handle_errors
def list_(workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    render(client(workspace).online_endpoints.list(), output, columns=_COLUMNS)


@app.command("delete")
@handle_errors
def delete(name: NameOpt, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
           no_wait: Annotated[bool, typer.Option("--no-wait")] = False, workspace: WorkspaceOpt = None) -> None:
    """Delete an endpoint and all its deployments."""
    if not yes:
        typer.confirm(f"Delete online endpoint {name!r} and all its deployments?", abort=True)
    client(workspace).online_endpoints.begin_delete(name)
    info(f"deleted online endpoint {name}")


@app.command("invoke")
@handle_errors
def invoke(name: NameOpt,
           request_file: Annotated[str, typer.Option("--request-file", "-r", help="JSON request body.")],
           deployment_name: Annotated[str | None, typer.Option("--deployment-name", "-d")] = None,
           local: Annotated[bool, typer.Option("--local")] = False, workspace: WorkspaceOpt = None) -> None:
    """Score a request file; the response body is printed."""
    out = client(workspace).online_endpoints.invoke(name, request_file=request_file, deployment_name=deployment_name)
    sys.stdout.write(out + "\n")


@app.command("get-credentials")
@handle_errors
def get_credentials(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
                    query: QueryOpt = None) -> None:
    """primaryKey/secondaryKey (key endpoints) or accessToken/expiryTimeUtc (aml_token endpoints)."""
    creds = client(workspace).online_endpoints.get_keys(name).to_dict()
    camel = {"".join(w if i == 0 else w.capitalize() for i, w in enumerate(k.split("_"))): v for k, v in creds.items()}
    show_result(camel, output, query)


@app.command("regenerate-keys")
@handle_errors
def regenerate_keys(name: NameOpt,
                    key_type: Annotated[str, typer.Option("--key-type", help="primary or secondary.")] = "primary",
                    no_wait: Annotated[bool, typer.Option("--no-wait")] = False, workspace: WorkspaceOpt = None) -> None:
    client(workspace).online_endpoints.regenerate_keys(name, key_type=key_type)
    info(f"regenerated the {key_type} key of online endpoint {name}")
