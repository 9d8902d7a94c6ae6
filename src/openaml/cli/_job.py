"""``openaml job create/show/list/stream/cancel/download/archive/restore/update``."""

from __future__ import annotations

import warnings
from datetime import UTC
from typing import Annotated, Any

import typer

from openaml.cli._common import NameOpt, OutputOpt, SetOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import info, query_given, render

app = typer.Typer(help="Jobs (command jobs; sweeps and pipelines as they land).", no_args_is_help=True)


def _summary(job: Any) -> dict[str, Any]:
    d = job.to_dict() if hasattr(job, "to_dict") else dict(job)
    extra = getattr(job, "_server_extra", {}) or {}
    d.update(extra)
    return d


def job_row(job: Any) -> dict[str, Any]:
    """A row of ``job list``: the fields of a job (an entity, or a wire record as it came) and its duration."""
    d = _summary(job)
    d["duration"] = _duration(d)
    return d


def _duration(d: dict[str, Any]) -> str:
    from datetime import datetime

    s, e = d.get("start_time"), d.get("end_time")
    if not s:
        return ""
    try:
        start = datetime.fromisoformat(str(s))
        end = datetime.fromisoformat(str(e)) if e else None
    except ValueError:
        return ""
    if end is None:

        end = datetime.now(UTC)
    return f"{(end - start).total_seconds():.1f}s"


@app.command("create")
@handle_errors
def create(file: Annotated[str, typer.Option("--file", "-f", help="Job YAML.")],
           name: Annotated[str | None, typer.Option("--name", "-n")] = None,
           set_: SetOpt = None,
           stream: Annotated[bool, typer.Option("--stream", "-s", help="Follow the log until the job ends.")] = False,
           experiment_name: Annotated[str | None, typer.Option("--experiment-name", "-e")] = None,
           workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Submit a job from YAML (``az ml job create --file job.yml [--set k=v] [--stream]``)."""
    from openaml._load import load_job

    overrides: list[Any] = list(set_ or [])
    check_port_overrides(file, overrides)
    if name:
        overrides.append({"name": name})
    job = load_job(file, params_override=overrides)
    ml = client(workspace)
    with warnings.catch_warnings(record=True) as caught:  # e.g. a sweep's clamped limits: one plain line each
        warnings.simplefilter("always")
        created = ml.jobs.create_or_update(job, experiment_name=experiment_name, progress=True)
    said: set[str] = set()  # the client's check and the server's answer may say the same thing
    for w in caught:
        if w.category is UserWarning:
            if str(w.message) not in said:
                said.add(str(w.message))
                info(f"[yellow]WARNING:[/] {w.message}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if stream:
        final = ml.jobs.stream(created.name, raise_on_failure=False)
        if final.status != "Completed":
            d = _summary(final)
            raise typer.Exit(1) if d.get("status") else typer.Exit(1)
        return
    render(_summary(created), output)


def check_port_overrides(file: str, overrides: list[Any]) -> None:
    """Refuse ``--set inputs.<n>...``/``outputs.<n>...`` naming a port the job's YAML does not declare
    (a typo would otherwise add an input the command never reads).

    Raises:
        ValidationError: naming the override and listing the declared inputs (or outputs).
    """
    from openaml._yaml import load_yaml_with_lines
    from openaml.errors import ValidationError

    wanted = [str(o).partition("=")[0].strip() for o in overrides if isinstance(o, str)]
    wanted += [k for o in overrides if isinstance(o, dict) for k in o]
    ports = [k for k in wanted if k.split(".", 1)[0] in ("inputs", "outputs") and "." in k]
    if not ports:
        return
    data, _ = load_yaml_with_lines(file)
    for key in ports:
        kind, port = key.split(".")[:2]
        found = data.get(kind)
        declared: dict[str, Any] = found if isinstance(found, dict) else {}
        if port not in declared:
            listed = ", ".join(sorted(declared)) or "none"
            raise ValidationError(f"--set {key}: the job in {file} declares no {kind[:-1]} {port!r}; "
                                  f"declared {kind}: {listed}")


TRIAL_ORDERS = ("metric", "duration", "index", "status", "name")
LIST_COLUMNS = ["name", "display_name", "type", "status", "experiment_name", "compute", "created_at", "duration"]


@app.command("show")
@handle_errors
def show(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json",
         order_by: Annotated[str, typer.Option(
             "--order-by", help="Sweeps: order of the trials: metric (best first, the default), duration "
             "(shortest first), index (submission order), status or name. Trials without the value come last.")
         ] = "metric",
         reverse: Annotated[bool, typer.Option("--reverse", help="Sweeps: reverse --order-by.")] = False) -> None:
    """Show a job: status, times, error and last log lines, metrics, outputs, studio URL.

    ``-o graph`` (the default for pipelines with ``-o table``) draws a pipeline's steps in order with
    each one's status, duration and why it ran or was reused. For a sweep, ``trials`` lists every
    trial (params, metric, status, duration), best first; ``-o table`` prints them as a table.
    """
    ml = client(workspace)
    raw = ml.jobs.get_raw(name)
    if raw.get("type") == "pipeline" and output in ("graph", "table"):
        _draw_pipeline(ml, raw)
        return
    if raw.get("type") == "automl" and output == "table":
        _draw_automl(raw)
        return
    if raw.get("type") == "sweep":
        if order_by not in TRIAL_ORDERS:
            from openaml.cli._output import fail

            fail(f"--order-by {order_by!r} is invalid; use one of {', '.join(TRIAL_ORDERS)}")
        raw["trials"] = sort_trials(raw.get("trials") or [], order_by, (raw.get("objective") or {}).get("goal"),
                                    reverse=reverse)
        if output == "table":
            _draw_sweep(raw)
            return
    render(raw, output)


def sort_trials(trials: list[dict[str, Any]], order_by: str = "metric", goal: str | None = "maximize", *,
                reverse: bool = False) -> list[dict[str, Any]]:
    """A sweep's trials ordered by ``order_by`` (metric: best first for ``goal``); trials without
    the value always come last; ties keep submission order."""
    key = {"metric": "metric", "duration": "duration_s", "index": "index", "status": "status", "name": "name"}[order_by]
    have = [t for t in trials if t.get(key) is not None]
    missing = [t for t in trials if t.get(key) is None]
    have.sort(key=lambda t: t.get("index") or 0)
    descending = order_by == "metric" and (goal or "maximize").lower() == "maximize"
    have.sort(key=lambda t: t[key], reverse=descending != reverse)
    return have + sorted(missing, key=lambda t: t.get("index") or 0)


def _draw_sweep(raw: dict[str, Any]) -> None:
    from openaml.cli._output import console

    obj = raw.get("objective") or {}
    head = f"sweep {raw['name']}  {raw['status']}  {_duration(raw)}".rstrip()
    if raw.get("best_child_run_id"):
        head += f"  best: {raw['best_child_run_id']}"
    console.print(head + f"  ({obj.get('goal', '')} {obj.get('primary_metric', '')})")
    if raw.get("error"):
        console.print(f"  {raw['error']}")
    rows = []
    for t in raw.get("trials") or []:
        params = " ".join(f"{k}={v}" for k, v in (t.get("params") or {}).items())
        rows.append({"index": t.get("index"), "name": t["name"], "status": t["status"],
                     obj.get("primary_metric") or "metric": t.get("metric"), "duration_s": t.get("duration_s"),
                     "params": params, "note": t.get("terminated") or t.get("note") or ""})
    render(rows, "table", columns=["index", "name", "status", obj.get("primary_metric") or "metric", "duration_s",
                                   "params", "note"])


def _draw_automl(raw: dict[str, Any]) -> None:
    """An AutoML job: status and best trial, guardrails, trials best first, feature importance."""
    from openaml.cli._output import console

    metric = raw.get("primary_metric") or "metric"
    head = f"automl {raw['name']}  {raw['status']}  {_duration(raw)}".rstrip()
    if raw.get("best_child_run_id"):
        head += f"  best: {raw['best_child_run_id']} {raw.get('best_algorithm')} ({metric} {raw.get('best_score')})"
    console.print(head)
    if raw.get("error"):
        console.print(f"  {raw['error']}")
    for g in raw.get("guardrails") or []:
        console.print(f"  guardrail {g['name']}: {g['status']} ({g.get('details', '')})")
    render([{"index": t.get("index"), "name": t["name"], "algorithm": t.get("algorithm"), "status": t["status"],
             metric: t.get("metric"), "duration_s": t.get("duration_s")} for t in raw.get("trials") or []],
           "table", columns=["index", "name", "algorithm", "status", metric, "duration_s"])
    if raw.get("feature_importance"):
        render(raw["feature_importance"][:15], "table", columns=["feature", "importance"])


def _draw_pipeline(ml: Any, raw: dict[str, Any]) -> None:
    """Steps in order, those of pipeline components indented under their node (``outer-inner``)."""
    from openaml.cli._output import console

    children = {c.name: _summary(c) for c in ml.jobs.list(parent_job_name=raw["name"])}
    console.print(f"pipeline {raw['name']}  {raw['status']}  {_duration(raw)}".rstrip())
    if raw.get("error"):
        console.print(f"  error: {raw['error']}")
    tree: dict[str, Any] = {}
    for node in raw.get("steps") or {}:
        *groups, leaf = node.split("-")
        branch = tree
        for g in groups:
            branch = branch.setdefault(g, {})
        branch[leaf] = node

    def draw(branch: dict[str, Any], depth: int) -> None:
        pad = "  " * (depth + 1)
        for key, value in branch.items():
            if isinstance(value, dict):
                console.print(f"{pad}{key}  (pipeline component)")
                draw(value, depth + 1)
                continue
            step = raw["steps"][value]
            child = children.get(step.get("job") or f"{raw['name']}-{value}")
            status = child["status"] if child else step.get("status", "NotStarted")
            props = (child or {}).get("properties") or {}
            reason = props.get("openaml.reason") or step.get("reason") or ""
            if props.get("best_child_run_id"):  # a sweep node: its outputs are this trial's
                reason += f"; best trial {props['best_child_run_id']}"
            deps = step.get("depends_on") or []
            arrow = f"  <- {', '.join(deps)}" if deps else ""
            dur = _duration(child) if child else ""
            console.print(f"{pad}{key:<{max(4, 22 - 2 * depth)}} {status:<10} {dur:>7}  {reason}{arrow}")

    draw(tree, 0)


@app.command("list")
@handle_errors
def list_(parent_job_name: Annotated[str | None, typer.Option("--parent-job-name", "-p")] = None,
          all_: Annotated[bool, typer.Option("--all", help="Include archived jobs.")] = False,
          max_results: Annotated[int | None, typer.Option("--max-results", "-r")] = None,
          workspace: WorkspaceOpt = None, output: OutputOpt = "table") -> None:
    ml = client(workspace)
    jobs: list[Any]
    if output in ("table", "tsv") and not query_given():
        # these print the columns only: read from the wire records, which hold the same values as
        # the entities (tests/test_cli_startup.py), without building a pydantic model per job
        jobs = ml.jobs.list_raw(parent_job_name=parent_job_name, include_archived=all_, max_results=max_results)
    else:
        jobs = ml.jobs.list(parent_job_name=parent_job_name, list_view_type="all" if all_ else None,
                            max_results=max_results)
    render([job_row(j) for j in jobs], output, columns=LIST_COLUMNS)


@app.command("stream")
@handle_errors
def stream(name: NameOpt, workspace: WorkspaceOpt = None) -> None:
    """Follow a job's log until it ends; exit code 1 when it did not complete."""
    final = client(workspace).jobs.stream(name, raise_on_failure=False)
    if final.status != "Completed":
        raise typer.Exit(1)


@app.command("cancel")
@handle_errors
def cancel(name: NameOpt, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    render(_summary(client(workspace).jobs.cancel(name)), output)


@app.command("download")
@handle_errors
def download(name: NameOpt,
             download_path: Annotated[str, typer.Option("--download-path", "-p")] = ".",
             output_name: Annotated[str | None, typer.Option("--output-name")] = None,
             all_: Annotated[bool, typer.Option("--all")] = False,
             workspace: WorkspaceOpt = None) -> None:
    """Download the default artifacts (``<path>/artifacts``) or named outputs (``<path>/named-outputs/<o>``)."""
    client(workspace).jobs.download(name, download_path=download_path, output_name=output_name, all=all_)
    info(f"downloaded job {name} outputs to {download_path}")


@app.command("archive")
@handle_errors
def archive(name: NameOpt, workspace: WorkspaceOpt = None) -> None:
    client(workspace).jobs.archive(name)
    info(f"archived job {name}")


@app.command("restore")
@handle_errors
def restore(name: NameOpt, workspace: WorkspaceOpt = None) -> None:
    client(workspace).jobs.restore(name)
    info(f"restored job {name}")


@app.command("update")
@handle_errors
def update(name: NameOpt, set_: SetOpt = None, workspace: WorkspaceOpt = None, output: OutputOpt = "json") -> None:
    """Update display_name, description or tags (``--set display_name=x``)."""
    from openaml._yaml import apply_set_overrides

    fields = apply_set_overrides({}, set_)
    render(_summary(client(workspace).jobs.update(name, **fields)), output)
