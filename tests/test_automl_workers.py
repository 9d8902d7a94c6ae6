"""AutoML trial workers (issue 14): trials run in long-lived worker child jobs, one per concurrent
trial, and every trial is still a child job with its own run, status and times; the limits end
the search and leave no process and no child Running (max_trials, exit_score, cancel of the
parent, timeout_minutes, trial_timeout_minutes with the worker replaced)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.test_automl import _frame, _job, _mltable

ROLE = "openaml.automl_role"


def _split(client: Any, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    every = client.jobs.list_raw(parent_job_name=name)
    workers = [k for k in every if (k.get("properties") or {}).get(ROLE) == "worker"]
    return workers, [k for k in every if k not in workers]


def _processes(names: set[str]) -> list[int]:
    """Processes still running for these jobs (their runner sets AZUREML_RUN_ID)."""
    found = []
    for p in psutil.process_iter(["environ"]):
        try:
            env = p.info["environ"] or {}
            if env.get("AZUREML_RUN_ID") in names and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _settled(client: Any, name: str, timeout: float = 60) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Workers and trials once none is active and no worker process is left (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        workers, trials = _split(client, name)
        active = [k for k in (*workers, *trials) if k["status"] not in ("Completed", "Failed", "Canceled")]
        if (not active and not _processes({w["name"] for w in workers})) or time.monotonic() > deadline:
            return workers, trials
        time.sleep(0.5)


def _assert_clean(client: Any, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    workers, trials = _settled(client, name)
    assert workers
    assert not [k["name"] for k in (*workers, *trials) if k["status"] not in ("Completed", "Failed", "Canceled")]
    assert not _processes({w["name"] for w in workers})
    return workers, trials


def test_max_trials_and_exit_score_end_the_search(ml_client: Any, tmp_path: Path, server: Any) -> None:
    from mlflow.tracking import MlflowClient

    data = _mltable(tmp_path / "d", _frame())
    job = _job(data)
    job.set_limits(timeout_minutes=5, max_trials=3, max_concurrent_trials=1)
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=600)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    workers, trials = _assert_clean(ml_client, job.name)
    assert len(workers) == 1 and workers[0]["status"] == "Completed"
    assert len(trials) == 3 and {t["status"] for t in trials} == {"Completed"}
    for t in trials:  # each trial its own run: its metrics, its times
        assert t["start_time"] and t["end_time"] and t["start_time"] <= t["end_time"]
    client = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    run = client.get_run(raw["best_child_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == job.name and "AUC_weighted" in run.data.metrics
    assert run.data.tags["automl_pipeline"].startswith("featurize(")

    job = _job(data)
    job.set_limits(timeout_minutes=5, max_trials=10, max_concurrent_trials=1, exit_score=0.5)
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Completed"
    workers, trials = _assert_clean(ml_client, job.name)
    assert len(trials) == 1  # the first trial's AUC is over 0.5: the search ends there
    assert "exit_score" in client.get_run(job.name).data.tags["automl_end_reason"]


def test_cancel_of_the_parent_stops_every_worker(ml_client: Any, tmp_path: Path) -> None:
    data = _mltable(tmp_path / "d", _frame(2000))
    job = _job(data)
    job.set_limits(timeout_minutes=10, max_trials=200, max_concurrent_trials=2)
    job = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        workers, trials = _split(ml_client, job.name)
        if trials and _processes({w["name"] for w in workers}):
            break
        time.sleep(0.5)
    assert trials, "no trial started"
    ml_client.jobs.cancel(job.name)
    assert ml_client.jobs.wait(job.name, timeout=120).status == "Canceled"
    workers, trials = _assert_clean(ml_client, job.name)
    assert {w["status"] for w in workers} == {"Canceled"}


@pytest.mark.slow
def test_timeout_minutes_ends_the_search_to_the_second(ml_client: Any, tmp_path: Path) -> None:
    data = _mltable(tmp_path / "d", _frame(2000))
    job = _job(data)
    # without early termination (on by default, as in Azure: it ended this search at ~25 s), the timeout ends it
    job.set_limits(timeout_minutes=1, trial_timeout_minutes=1, max_trials=1000, max_concurrent_trials=2,
                   enable_early_termination=False)
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=400)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    workers, trials = _assert_clean(ml_client, job.name)
    from datetime import datetime

    took = (datetime.fromisoformat(raw["end_time"]) - datetime.fromisoformat(raw["start_time"])).total_seconds()
    # the search runs to the timeout: a tree ensemble's last trial stops growing before it (its trial's
    # time limit), another learner's trial still training then is canceled
    assert 55 <= took < 75, took
    assert {w["status"] for w in workers} <= {"Completed", "Canceled"}
    assert any(t["status"] == "Completed" for t in trials)


@pytest.mark.slow
def test_a_trial_over_trial_timeout_minutes_is_stopped_and_its_worker_replaced(ml_client: Any, tmp_path: Path) -> None:
    data = _mltable(tmp_path / "d", _frame())
    job = _job(data, environment_variables={"OPENAML_AUTOML_TEST_FIRST_TRIAL_DELAY_S": "600"})
    job.set_limits(timeout_minutes=5, trial_timeout_minutes=1, max_trials=3, max_concurrent_trials=1)
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=600)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    workers, trials = _assert_clean(ml_client, job.name)
    first = next(t for t in trials if t["name"] == f"{job.name}_0")
    assert first["status"] == "Canceled" and "trial_timeout_minutes" in first["error"]
    status = {w["name"].removeprefix(job.name): w["status"] for w in workers}
    assert status == {"_worker_0": "Canceled", "_worker_0_r1": "Completed"}
    assert len(trials) == 3 and sum(t["status"] == "Completed" for t in trials) == 2


def test_the_ensembles_run_in_the_first_worker_and_compete_for_the_best(ml_client: Any, tmp_path: Path,
                                                                         server: Any) -> None:
    """Vote and stack ensembles (on by default, as Azure's) of the best trials run in the workers
    once the search ended (no new process), as the job's last trials, each
    a child job with its metrics and a model that scores raw rows; the best of all the trials is
    the job's best."""
    import pickle

    from mlflow.tracking import MlflowClient

    data = _mltable(tmp_path / "d", _frame())
    job = _job(data)
    job.set_limits(timeout_minutes=5, max_trials=4, max_concurrent_trials=2)
    job.set_training(allowed_training_algorithms=["LightGBM", "LogisticRegression", "RandomForest"],
                     enable_vote_ensemble=True, enable_stack_ensemble=True, enable_model_explainability=False)
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=600)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    workers, trials = _assert_clean(ml_client, job.name)
    assert len(workers) == 2 and {w["status"] for w in workers} == {"Completed"}
    assert len(trials) == 6 and {t["status"] for t in trials} == {"Completed"}
    client = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    by_algo = {t["algorithm"]: t for t in raw["trials"]}
    search = [t for t in raw["trials"] if t["algorithm"] not in ("VotingEnsemble", "StackEnsemble")]
    ran_in = set()
    for algo in ("VotingEnsemble", "StackEnsemble"):
        run = client.get_run(by_algo[algo]["name"])
        ran_in.add(run.data.tags["openaml.automl_worker"])
        members = json.loads(run.data.params["ensembled_iterations"])
        assert set(members) <= {t["name"] for t in search} and len(members) >= 1
        assert "AUC_weighted" in run.data.metrics and float(run.data.tags["automl_fit_seconds"]) >= 0
    assert ran_in <= {f"{job.name}_worker_0", f"{job.name}_worker_1"}  # both in one, or one each
    # the workers heard the best per learner of the whole job (it ranks what each refines)
    from openaml.automl._metrics import loss_of

    heard = [json.loads(tags["automl.peers"]) for tags in (client.get_run(w["name"]).data.tags for w in workers)
             if "automl.peers" in tags]
    assert heard
    scored = {(t["algorithm"], round(loss_of("AUC_weighted", t["metric"]), 9)) for t in search}
    for algorithm, (loss, config) in heard[-1].items():
        assert (algorithm, round(loss, 9)) in scored and isinstance(config, dict)
    # the job's best is the best of every trial, ensembles included
    assert raw["best_score"] == max(t["metric"] for t in raw["trials"])
    assert raw["guardrails"] and raw["guardrails"][0]["name"] == "Class balancing detection"
    local = client.download_artifacts(by_algo["StackEnsemble"]["name"], "outputs/model.pkl", str(tmp_path))
    with open(local, "rb") as f:
        model = pickle.load(f)
    rows = _frame().drop(columns=["label"]).head(4)
    assert model.predict_proba(rows).shape == (4, 2) and set(model.predict(rows)) <= {"yes", "no"}


def test_a_workers_mlflow_import_does_not_import_the_servers_side() -> None:
    """MLflow loads openaml's ``azureml`` artifact repository (an entry point) on ``import mlflow``,
    in every worker and job: ``openaml.tracking`` names its server-side parts lazily, so that
    SQLAlchemy and the workspace are not imported there (about 0.4 s of each worker's start)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['ray'] = None; from mlflow.tracking import MlflowClient; "
            "import openaml.tracking._azureml_artifacts; import openaml.tracking as t; "
            "print(sorted(m for m in ('sqlalchemy', 'openaml.workspace', 'openaml.tracking._tracking') "
            "if m in sys.modules)); t.Tracking; print('openaml.tracking._tracking' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["[]", "True"]


def test_the_ensembles_are_handed_one_each_while_another_worker_still_searches(tmp_path: Path) -> None:
    """An ensemble worker that ends its search while the other still searches gets one ensemble;
    the other gets the next when it ends its search, with the same members; once none is left,
    each hears ``automl.end``. Alone, a worker free again gets what is left."""
    from openaml.services.kinds._automl_workers import WorkerPool

    class Tracking:
        def __init__(self) -> None:
            self.tags: dict[str, dict[str, str]] = {}

        def run_summary(self, name: str) -> dict[str, Any]:
            return {"tags": dict(self.tags.get(name, {}))}

        def set_tags(self, name: str, tags: dict[str, str]) -> None:
            self.tags.setdefault(name, {}).update(tags)

        def run_artifact_dir(self, name: str) -> Path:
            return tmp_path / name

    class Store:
        def update_job(self, name: str, runtime_update: dict[str, Any]) -> None:
            pass

    class Ctx:
        tracking = Tracking()
        store = Store()

    class Pool(WorkerPool):
        ctx = Ctx()

        def log(self, name: str, line: str) -> None:
            pass

    for m in ("t1", "t2", "t3"):
        (tmp_path / m / "outputs").mkdir(parents=True)
        for f in ("model.pkl", "oof.npz"):
            (tmp_path / m / "outputs" / f).write_bytes(b"x")
    kinds = ["vote_ensemble", "stack_ensemble"]

    def worker(name: str) -> dict[str, Any]:
        return {"name": name, "status": "Running", "runtime": {"automl_worker": {"ensembles": kinds}}, "spec": {}}

    def order(name: str) -> dict[str, Any]:
        return dict(json.loads(tr.tags[name]["automl.ensemble"]))

    pool, tr = Pool(), Ctx.tracking
    row: dict[str, Any] = {"name": "job", "runtime": {}}
    w0, w1 = worker("w0"), worker("w1")
    tr.set_tags("w0", {"automl.searched": "5"})
    pool._worker_ensembles(row, [w0, w1], [], "AUC_weighted", ["t1", "t2"], kinds)
    assert order("w0") == {"members": ["t1", "t2"], "kinds": ["vote_ensemble"], "order": 1}
    import tarfile

    with tarfile.open(tmp_path / "w0" / "ensemble.tar") as tf:  # the members' files, one request for the worker
        assert sorted(tf.getnames()) == ["t1/model.pkl", "t1/oof.npz", "t2/model.pkl", "t2/oof.npz"]
    assert "automl.end" not in tr.tags["w0"]
    tr.set_tags("w1", {"automl.searched": "3"})  # the members now would be others: the first ones stay
    pool._worker_ensembles(row, [w0, w1], [], "AUC_weighted", ["t3", "t1"], kinds)
    assert order("w1") == {"members": ["t1", "t2"], "kinds": ["stack_ensemble"], "order": 1}
    assert tr.tags["w0"]["automl.end"] == tr.tags["w1"]["automl.end"] == "none left"
    assert row["runtime"]["ensembles_submitted"] is True

    # alone (the other still searches, then is free again before it): one, then the next
    tr.tags.clear()
    row = {"name": "job2", "runtime": {}}
    tr.set_tags("w0", {"automl.searched": "5"})
    pool._worker_ensembles(row, [w0, w1], [], "AUC_weighted", ["t1", "t2"], kinds)
    assert order("w0")["kinds"] == ["vote_ensemble"]
    pool._worker_ensembles(row, [w0, w1], [], "AUC_weighted", ["t1", "t2"], kinds)  # still building
    assert order("w0")["order"] == 1
    tr.set_tags("w0", {"automl.ensembled": "1"})
    pool._worker_ensembles(row, [w0, w1], [], "AUC_weighted", ["t1", "t2"], kinds)
    assert order("w0") == {"members": ["t1", "t2"], "kinds": ["stack_ensemble"], "order": 2}
    assert tr.tags["w1"]["automl.end"] == "the other workers build the ensembles"
    assert tr.tags["w0"]["automl.end"] == "none left"


def test_an_ensemble_worker_builds_what_it_is_handed_then_waits_for_more(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's side: it builds the kinds of each order (``automl.ensemble``, ``order`` n),
    says so (``automl.ensembled`` n), builds the next order it gets, and ends at ``automl.end``
    only after what it was handed."""
    import argparse

    from openaml.automl import _worker

    built: list[str] = []

    def run_one(settings: dict[str, Any], args: Any, folder: Path) -> dict[str, Any]:
        built.append(settings["learner"])
        return {"metrics": {"AUC_weighted": 0.9}, "error": None}

    class Client:
        def download_artifacts(self, run_id: str, path: str, dst: str) -> str:
            import tarfile

            assert path == "ensemble.tar"  # the members' files as one tar, in the worker's run
            with tarfile.open(Path(dst) / path, "w"):
                pass
            return str(Path(dst) / path)

    class Channel:
        run_id = "w0"
        client = Client()

        def __init__(self) -> None:
            self.tags_now: dict[str, str] = {"automl.ensemble": json.dumps(
                {"members": ["t1", "t2"], "kinds": ["vote_ensemble"], "order": 1})}
            self.reports: list[tuple[int, dict[str, Any]]] = []

        def tags(self) -> dict[str, str]:
            return dict(self.tags_now)

        def report(self, j: int, record: dict[str, Any], folder: Path | None = None) -> None:
            self.reports.append((j, record))

        def flush(self) -> None:
            pass

        def tag(self, key: str, value: str) -> None:
            self.tags_now[key] = value
            if key == "automl.ensembled" and value == "1":  # the job hands the next, and it is the last
                self.tags_now.update({"automl.ensemble": json.dumps(
                    {"members": ["t1", "t2"], "kinds": ["stack_ensemble"], "order": 2}), "automl.end": "none left"})

    monkeypatch.setattr(_worker, "run_one", run_one)
    channel = Channel()
    ws = {"metric": "AUC_weighted", "task": "classification"}
    _worker._ensembles(ws, argparse.Namespace(member=[]), channel, tmp_path, 7,  # type: ignore[arg-type]
                       time.time() + 30)
    assert built == ["vote_ensemble", "stack_ensemble"]
    assert [j for j, r in channel.reports if r["state"] == "done"] == [7, 8]
    assert channel.tags_now["automl.ensembled"] == "2"


def test_the_timeout_still_ends_a_search_that_was_asked_to_stop_early() -> None:
    """Early termination (or the exit score) asks the workers to start no more trials; a trial
    that then runs past ``limits.timeout_minutes`` is ended at the timeout all the same (it ran
    6 s past a 1-minute job in the bench): the job's pass ends its workers then."""
    from openaml.services.kinds.automl import timeout_stop

    early = "early termination: no improvement in the last 10 trials"
    assert timeout_stop(early, 59.9, 60, 1) is None
    assert timeout_stop(early, 60.0, 60, 1) == "limits.timeout_minutes (1 min) was reached"
    assert timeout_stop("limits.exit_score (0.9) was reached", 75, 60, 1) is not None
    assert timeout_stop(None, 75, 60, 1) is None  # not stopping yet: the pass itself ends it at the timeout
    assert timeout_stop("limits.timeout_minutes (1 min) was reached", 75, 60, 1) is None  # already ending


def test_workers_fork_from_automls_warm_process_and_a_jobs_switch_keeps_it_cold(tmp_path: Path) -> None:
    """Issue 14's overhead: the workers of an AutoML job fork from AutoML's warm process (its
    imports paid once per server, not per worker: openaml.automl._warm), each in its own job, and
    train the same trials; ``OPENAML_AUTOML_WARM: "0"`` among the AutoML job's variables keeps its
    workers cold; the warm process ends after its idle time."""
    import os

    from openaml import MLClient
    from tests.conftest import start_server

    server = start_server(tmp_path / "ws", name=f"automl-warm-{os.getpid()}",
                          env={"OPENAML_AUTOML_WARM_IDLE_SECONDS": "8"})
    try:
        with MLClient(workspace=server.url) as ml:
            data = _mltable(tmp_path / "d", _frame())
            seen: dict[str, list[str]] = {}
            for how, variables in (("warm", {}), ("cold", {"OPENAML_AUTOML_WARM": "0"})):
                job = _job(data, environment_variables=variables)
                job = ml.jobs.create_or_update(job)
                assert ml.jobs.wait(job.name, timeout=600).status == "Completed", ml.jobs.get_raw(job.name).get("error")
                workers, trials = _assert_clean(ml, job.name)
                assert len(workers) == 2 and len(trials) == 2 and {t["status"] for t in trials} == {"Completed"}
                seen[how] = ["".join(p.read_text() for p in (server.path / "jobs" / w["name"]).rglob("runner.log"))
                             for w in workers]
            assert all("the job's processes fork from it" in log for log in seen["warm"])
            assert not any("warm pool" in log for log in seen["cold"])
            (meta,) = [json.loads(m.read_text()) for m in (server.path / "pools").glob("automl-*/meta.json")]
            deadline = time.monotonic() + 90
            while psutil.pid_exists(int(meta["pid"])) and time.monotonic() < deadline:
                if psutil.Process(int(meta["pid"])).status() == psutil.STATUS_ZOMBIE:
                    break
                time.sleep(0.5)
            log = (server.path / "pools" / f"automl-{meta['key']}" / "pool.log").read_text()
            assert "idle for 8 s" in log and "fork-unsafe" not in log
            assert server.proc.poll() is None
    finally:
        server.stop()


def test_only_an_automl_workers_exact_command_on_the_servers_environment_is_served_warm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """services._warm_steps.warm_process for AutoML's workers: the command a worker is submitted
    with (its data inputs only), on the server's environment, without code, no PYTHON*/LD_*
    variable, a job's own OPENAML_AUTOML_WARM=0; the workspace policy last."""
    from types import SimpleNamespace

    from openaml.services._warm_steps import warm_process

    users: list[str] = []
    ctx = SimpleNamespace(services={"users": SimpleNamespace(list=lambda: users)})
    command = "python -m openaml.automl._worker --training_data ${{inputs.training_data}}"

    def row(**spec: Any) -> dict[str, Any]:
        rt = spec.pop("runtime", {"environment": {"kind": "base"}})
        return {"spec": {"type": "command", "command": command, **spec}, "runtime": rt}

    monkeypatch.delenv("OPENAML_AUTOML_WARM", raising=False)
    assert warm_process(ctx, row()) == "automl"
    assert warm_process(ctx, row(command=command + " --validation_data ${{inputs.validation_data}}")) == "automl"
    assert warm_process(ctx, row(command=command + " ; cat server.token")) is None
    assert warm_process(ctx, row(command=command + " --training_data /tmp/x")) is None
    assert warm_process(ctx, row(runtime={"environment": {"kind": "conda", "spec_hash": "x"}})) is None
    assert warm_process(ctx, row(runtime={"environment": {"kind": "base"}, "code_dir": "/tmp/code"})) is None
    assert warm_process(ctx, row(environment_variables={"LD_PRELOAD": "/tmp/x.so"})) is None
    assert warm_process(ctx, row(environment_variables={"OPENAML_AUTOML_WARM": "0"})) is None
    users.append("ann")
    assert warm_process(ctx, row()) is None
    monkeypatch.setenv("OPENAML_AUTOML_WARM", "1")
    assert warm_process(ctx, row()) == "automl"
