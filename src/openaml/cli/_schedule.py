"""``openaml schedule create/show/list/update/enable/disable/trigger/delete`` (``az ml schedule``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openaml.cli._common import NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, render

app = typer.Typer(help="Job schedules (cron and recurrence triggers).", no_args_is_help=True)

NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Accepted for az ml compatibility (calls return at once).")]
_COLUMNS = ["name", "display_name", "is_enabled", "trigger_type", "next_fire_time", "last_fire_time",
            "last_job_name", "fire_count"]


def _raw(ml: Any, name: str) -> dict[str, Any]:
    return ml.schedules.get_raw(name)  # type: ignore[no-any-return]


def _row(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    d["trigger_type"] = (d.get("trigger") or {}).get("type")
    return d


@app.command("create")
@handle_errors
def create(file: Annotated[str, typer.Option("--file", "-f", help="Schedule YAML.")],
           name: Annotated[str | None, typer.Option("--name", "-n", help="Overrides the YAML's name.")] = None,
           set_: SetOpt = None, no_wait: NoWaitOpt = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Create a schedule from YAML (``az ml schedule create --file s.yml [--name] [--set k=v]``)."""
    from openaml._load import load_schedule

    overrides: list[Any] = list(set_ or [])
    if name:
        overrides.append({"name": name})
    sched = load_schedule(file, params_override=overrides)
    ml = client(workspace)
    created = ml.schedules.begin_create_or_update(sched).result()
    render(_raw(ml, created.name), output)


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Show a schedule with its next and last fire times, last job and error."""
    render(_raw(client(workspace), name), output)


@app.command("list")
@handle_errors
def list_(include_disabled: Annotated[bool, typer.Option("--include-disabled", help="Enabled and disabled.")] = False,
          disabled_only: Annotated[bool, typer.Option("--disabled-only", help="Only disabled schedules.")] = False,
          max_results: Annotated[int | None, typer.Option("--max-results", "-r")] = None,
          workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    """List schedules (enabled ones unless --include-disabled or --disabled-only)."""
    view = "DisabledOnly" if disabled_only else "All" if include_disabled else "EnabledOnly"
    ml = client(workspace)
    rows = [_row(d) for d in ml.schedules.list_raw(view)]
    if max_results is not None:
        rows = rows[:max_results]
    render(rows, output, columns=_COLUMNS)


@app.command("update")
@handle_errors
def update(name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           file: Annotated[str | None, typer.Option("--file", "-f", help="Schedule YAML (replaces the definition).")] = None,
           set_: SetOpt = None, no_wait: NoWaitOpt = False,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Update a schedule: ``--set description=x``, ``--set trigger.expression="15 * * * *"``, or ``--file``."""
    from openaml._yaml import apply_set_overrides
    from openaml.errors import ValidationError

    ml = client(workspace)
    if file:
        from openaml._load import load_schedule

        overrides: list[Any] = list(set_ or [])
        if name:
            overrides.append({"name": name})
        sched = ml.schedules.begin_create_or_update(load_schedule(file, params_override=overrides)).result()
        render(_raw(ml, sched.name), output)
        return
    if not name:
        raise ValidationError("schedule update needs --name (and --set) or --file")
    if not set_:
        raise ValidationError("schedule update --name needs at least one --set key=value (or a --file)")
    fields = apply_set_overrides({}, set_)
    ml.schedules._update_fields(name, fields)
    render(_raw(ml, name), output)


@app.command("enable")
@handle_errors
def enable(name: NameOpt, no_wait: NoWaitOpt = False, workspace: WorkspaceOpt = None,
           output: OutputOpt = "json") -> None:
    """Enable a schedule; it fires from its next fire time after now (no catch-up of the disabled period)."""
    ml = client(workspace)
    ml.schedules.begin_enable(name).result()
    render(_raw(ml, name), output)


@app.command("disable")
@handle_errors
def disable(name: NameOpt, no_wait: NoWaitOpt = False, workspace: WorkspaceOpt = None,
            output: OutputOpt = "json") -> None:
    """Disable a schedule: it creates no jobs until enabled again."""
    ml = client(workspace)
    ml.schedules.begin_disable(name).result()
    render(_raw(ml, name), output)


@app.command("trigger")
@handle_errors
def trigger(name: NameOpt,
            schedule_time: Annotated[str | None, typer.Option("--schedule-time", help="ISO time to record.")] = None,
            workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Fire a schedule once now."""
    res = client(workspace).schedules.trigger(name, schedule_time=schedule_time)
    render(vars(res), output)


@app.command("delete")
@handle_errors
def delete(name: NameOpt, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
           no_wait: NoWaitOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Delete a schedule (the jobs it created stay)."""
    client(workspace).schedules.begin_delete(name).result()
    info(f"deleted schedule {name}")
