"""``openaml demo titanic``: the Titanic example end to end, through the same SDK calls as the CLI.

Steps (each one the SDK call behind an ``openaml`` command)::

    openaml data create --file data.yml                  # titanic-mltable, next version
    openaml environment create --file environment.yml    # titanic-env, next version
    openaml job create --file job.yml --stream           # inputs pinned to the versions just made
    openaml model show -n titanic-model -l latest        # registered by the job's mlflow.log_model

Progress and the job's log go to stderr; the summary (job, status, accuracy, AUC, model, MLflow
UI URL) goes to stdout. The exit code is 1 when any step fails. Running it again makes the next
version of the data, environment and model (Azure ML's behaviour for unversioned YAML).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from openaml.cli._common import OutputOpt, WorkspaceOpt, client, handle_errors
from openaml.cli._output import fail, info, render
from openaml.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(help="Run the bundled examples end to end.", no_args_is_help=True)

MODEL_NAME = "titanic-model"


def find_example(name: str, given: str | None = None) -> Path:
    """Folder of ``examples/<name>``: ``given``, else the source checkout's, else under the current folder.

    Raises:
        ValidationError: no folder with a job.yml was found (the places looked at are listed).
    """
    import openaml

    if given:
        candidates = [Path(given).expanduser()]
    else:
        candidates = [Path(openaml.__file__).resolve().parents[2] / "examples" / name,
                      Path.cwd() / "examples" / name, Path.cwd()]
    for c in candidates:
        if (c / "job.yml").is_file() and (c / "data.yml").is_file():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise ValidationError(f"the {name} example was not found (looked in {looked}); pass --path to the folder "
                          f"holding its job.yml, data.yml and environment.yml")


def ensure_workspace(workspace: str | None) -> str | None:
    """Create ``workspace`` when it names no existing workspace (a bare name or a new folder).

    ``None`` (the default local workspace, created on first use) and URLs are returned unchanged.
    """
    if workspace is None or workspace.startswith(("http://", "https://")):
        return workspace
    from openaml.workspace import create_workspace, list_workspaces

    p = Path(workspace).expanduser()
    if (p / "workspace.json").is_file():
        return workspace
    looks_like_path = any(sep in workspace for sep in ("/", "\\")) or workspace.startswith(".")
    if not looks_like_path:
        if any(w["name"] == workspace for w in list_workspaces()):
            return workspace
        layout = create_workspace(workspace)
    else:
        layout = create_workspace(p.resolve().name, p)
    info(f"created workspace {layout.info()['name']} at {layout.root}")
    return str(layout.root) if looks_like_path else workspace


def _step(n: int, total: int, text: str) -> None:
    info(f"[bold][{n}/{total}][/] {text}")


@app.command("titanic")
@handle_errors
def titanic(workspace: WorkspaceOpt = None,
            environment: Annotated[str | None, typer.Option(
                "--environment", "-e",
                help="Run the job in this environment instead of titanic-env, e.g. "
                     "azureml:titanic-env:1 (it needs scikit-learn, pandas, mlflow and mltable).")] = None,
            path: Annotated[str | None, typer.Option(
                "--path", help="Folder of the titanic example (default: examples/titanic).")] = None,
            output: OutputOpt = "yaml") -> None:
    """Register the Titanic MLTable and environment, train, and show the registered model."""
    from openaml._load import load_data, load_environment, load_job

    folder = find_example("titanic", path)
    ws = ensure_workspace(workspace)
    ml = client(ws)
    info(f"workspace {ml.workspace_name} ({ml.url}); example {folder}")
    total = 4

    _step(1, total, f"data create --file {folder / 'data.yml'}")
    data = ml.data.create_or_update(load_data(folder / "data.yml"), show_progress=False)
    info(f"      data {data.name}:{data.version}")

    _step(2, total, f"environment create --file {folder / 'environment.yml'}")
    env = ml.environments.create_or_update(load_environment(folder / "environment.yml"))
    info(f"      environment {env.name}:{env.version}")

    job_env = environment or f"azureml:{env.name}:{env.version}"
    _step(3, total, f"job create --file {folder / 'job.yml'} --stream (environment {job_env})")
    job = load_job(folder / "job.yml", params_override=[
        {"inputs.titanic.path": f"azureml:{data.name}:{data.version}"}, {"environment": job_env}])
    created = ml.jobs.create_or_update(job)
    final = ml.jobs.stream(created.name, out=sys.stderr, raise_on_failure=False)
    raw = ml.jobs.get_raw(created.name)
    summary: dict[str, Any] = {
        "workspace": ml.workspace_name, "job": created.name, "status": raw["status"],
        "data": f"{data.name}:{data.version}", "environment": job_env,
    }
    if final.status != "Completed":
        render(summary, output)
        fail(f"job {created.name} ended {raw['status']}: {raw.get('error') or 'see the log above'}; "
             f"openaml job show -n {created.name}")
    metrics = raw.get("metrics") or {}
    summary["accuracy"] = metrics.get("accuracy")
    summary["AUC"] = metrics.get("AUC")

    _step(4, total, f"model show -n {MODEL_NAME} -l latest")
    model = ml.models.get(MODEL_NAME, label="latest")
    summary["model"] = f"{model.name}:{model.version}"
    summary["run_url"] = raw.get("studio_url")
    summary["mlflow_ui"] = f"{ml.url}/mlflow/"
    problems = []
    if summary["accuracy"] is None or summary["AUC"] is None:
        problems.append(f"the job logged no accuracy/AUC metrics (metrics: {sorted(metrics)})")
    if model.job_name and model.job_name != created.name:
        problems.append(f"the latest {MODEL_NAME} ({model.version}) comes from job {model.job_name}, "
                        f"not {created.name}")
    render(summary, output)
    if problems:
        fail("; ".join(problems))
