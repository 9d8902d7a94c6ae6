"""An AutoML trial worker: one long-lived child job of an AutoML job that runs many trials in one
process (``python -m openaml.automl._worker``), so the runner, the environment, the imports and
the data are paid once per worker, not once per trial (as FLAML runs its search in one process).

The AutoML job starts ``max_concurrent_trials`` workers (child command jobs, run by the runner
like any job: its environment, inputs, compute, PID namespace). Each runs FLAML's search
(:class:`openaml.automl._search.Search`: zero-shot start per learner, then CFO on the best
learners) over its share of the algorithms (worker ``i`` of ``n``: the algorithms ``i, i+n, ...``
in FLAML's priority order) and trains each suggestion in-process
(:func:`openaml.automl._trial.run_trial`, the code a one-trial child job runs).

Settings come as JSON in ``OPENAML_AUTOML_WORKER`` (the trial settings plus ``algorithms``,
``ftask``, ``data_size``, ``quota`` (trials it may start), ``deadline`` (epoch
seconds: no trial starts after it), ``trial_limit_s``, ``history`` ([algorithm, config, loss] of
the trials of a worker it replaces) and ``first`` (its first trial number)).

What it reports goes to its own MLflow run (the only run its token may write), which the AutoML
job reads on each controller pass and turns into the trial's child job
(:mod:`openaml.services.kinds._automl_workers`):

- tag ``automl.trial.<j>``: ``{"state": "running", "t0", "algorithm", "learner", "config"}`` when
  trial ``j`` starts, then the same with ``"state": "done"``, ``t1`` once its files are uploaded;
- artifact ``trials/<j>.tar``: ``outputs/`` (the trial's model files), ``result.json`` (metrics,
  params, tags, error) and ``log.txt`` (what the trial printed: the child job's log);
- it reads tag ``automl.peers`` (written by the AutoML job: the best loss and configuration per
  algorithm over every worker's trials), which ranks the learners its search refines;
- tag ``automl.guardrails`` (the first worker, ``"guardrails": true`` in its settings, before its
  first trial): the data guardrails (:func:`openaml.automl._guardrails.guardrails_of`).

It stops after its quota, at its deadline (less ``reserve_s``, the ensembles' time; with such a
reserve also before a trial that would run into it, going by its learner's last trial here, unless
the learner is a tree ensemble: its trees stop growing at the trial's time limit), when its
search has converged, or when the AutoML job sets tag ``automl.stop`` on its run (exit score or
early termination reached by another worker). An ensemble worker (``ensembles`` in its settings:
the first two) then sets tag ``automl.searched`` and waits for the job's word: ``automl.ensemble``
(the members and the kinds it builds, the members' files in its run's ``ensemble.tar``) or
``automl.end``; it runs the ensembles as its next trials, sets ``automl.ensembled`` and waits for
more (a kind another ensemble worker, still training, was to build) or the end (:func:`_ensembles`).
The AutoML job cancels it (the runner ends its process group) at the job's timeout, on a trial
over ``trial_timeout_minutes`` (and starts a replacement), and when the job is canceled.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["main"]

_STOP_TAG = "automl.stop"
_SEARCHED_TAG, _ENSEMBLE_TAG, _END_TAG = "automl.searched", "automl.ensemble", "automl.end"
_ENSEMBLED_TAG = "automl.ensembled"
_PEERS_TAG = "automl.peers"
# the FLAML learners whose fit stops adding trees at the trial's time limit (openaml.automl._trial.fit_within)
_BOUNDED = frozenset({"lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree"})


def _clock() -> str:
    """The time of day (UTC, milliseconds) for the log's lines on the hand-over to the ensembles."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"


def _cached_reader() -> None:
    """Every trial of the worker reads the data folders once: ``read_mltable`` memoized by path."""
    from openaml.automl import _data

    original = _data.read_mltable
    cache: dict[str, Any] = {}

    def read(path: Any, *a: Any, **kw: Any) -> Any:
        key = str(Path(path).resolve())
        if a or kw:
            return original(path, *a, **kw)
        if key not in cache:
            cache[key] = original(path)
        return cache[key].copy(deep=False)

    _data.read_mltable = read  # type: ignore[assignment]


class _Channel:
    """The worker's own MLflow run: its reports (tags, artifacts) and the stop request.

    Reports go out from a thread of their own, in order, while the next trial trains: a trial's
    files as one tar (``trials/<j>.tar``, one request), then the tags waiting (one request)."""

    def __init__(self) -> None:
        from mlflow.tracking import MlflowClient

        self.run_id = os.environ["MLFLOW_RUN_ID"]
        self.client = MlflowClient()
        self.queue: queue.Queue[tuple[int, dict[str, Any], Path | None] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._send, name="automl-reports", daemon=True)
        self.thread.start()
        self._checked = 0.0
        self._stop: str | None = None
        self._peers: dict[str, tuple[float, dict[str, Any]]] = {}

    def stop_requested(self) -> str | None:
        """The AutoML job's stop request (looked up at most once a second, with :meth:`peers`)."""
        if self._stop is None and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            try:
                tags = self.client.get_run(self.run_id).data.tags
            except Exception:  # noqa: BLE001 - the server is briefly unreachable: the next look decides
                return None
            self._stop = tags.get(_STOP_TAG)
            try:
                self._peers = {a: (float(v), dict(c)) for a, (v, c) in json.loads(tags.get(_PEERS_TAG) or "{}").items()}
            except (ValueError, TypeError):  # not what the job writes: the worker ranks by its own trials
                self._peers = {}
        return self._stop

    def peers(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """The other workers' best loss and configuration per algorithm, as the AutoML job last wrote
        them (tag ``automl.peers``; read with the stop request)."""
        return self._peers

    def report(self, j: int, record: dict[str, Any], folder: Path | None = None) -> None:
        self.queue.put((j, record, folder))

    def tag(self, key: str, value: str) -> None:
        """Set one tag on the worker's run now (the reports' thread keeps its order for the trials)."""
        try:
            self.client.set_tag(self.run_id, key, value)
        except Exception:  # noqa: BLE001 - the AutoML job computes what is missing at its end
            traceback.print_exc()

    def close(self) -> None:
        """Send what is waiting, then end the thread."""
        self.queue.put(None)
        self.thread.join()

    def flush(self) -> None:
        """Send what is waiting (the reports after it go out after it)."""
        self.close()
        self.thread = threading.Thread(target=self._send, name="automl-reports", daemon=True)
        self.thread.start()

    def tags(self) -> dict[str, str]:
        """The worker run's tags now ({} when the server is briefly unreachable)."""
        try:
            return dict(self.client.get_run(self.run_id).data.tags)
        except Exception:  # noqa: BLE001
            return {}

    def _send(self) -> None:
        from mlflow.entities import RunTag

        done = False
        while not done:
            items = [self.queue.get()]
            while True:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            tags = []
            for item in items:
                if item is None:
                    done = True
                    continue
                j, record, folder = item
                try:
                    if folder is not None:
                        tar = folder.parent / f"{j}.tar"
                        with tarfile.open(tar, "w") as tf:
                            tf.add(folder, arcname=".")
                        self.client.log_artifact(self.run_id, str(tar), "trials")
                        tar.unlink()
                        shutil.rmtree(folder, ignore_errors=True)
                except Exception:  # noqa: BLE001 - the trial's files are lost: the job records it failed
                    traceback.print_exc()
                    record = {**record, "lost": "its files could not be sent"}
                tags.append(RunTag(f"automl.trial.{j}", json.dumps(record)))
            if tags:
                try:
                    self.client.log_batch(self.run_id, tags=tags)
                except Exception:  # noqa: BLE001
                    traceback.print_exc()


def _zero_shot(ws: dict[str, Any], args: argparse.Namespace) -> Any:
    """FLAML learner -> its zero-shot configuration on the training data (computed once, when the
    search first refines the learner), or None."""
    from openaml.automl._data import read_mltable
    from openaml.automl._search import zero_shot_configs

    found: dict[str, dict[str, Any] | None] = {}

    def zero(learner: str) -> dict[str, Any] | None:
        if learner not in found:
            df = read_mltable(args.training_data)
            target = ws["target"]
            X = df[df[target].notna()].drop(columns=[target])
            if ws["task"] == "forecasting":  # the lag features are built per trial: the frame stands in for them
                X = X.select_dtypes("number")
            found[learner] = zero_shot_configs(ws["ftask"], X, df[target].dropna(), [learner]).get(learner)
        return found[learner]

    return zero


def _guardrails(ws: dict[str, Any], args: argparse.Namespace, channel: _Channel) -> None:
    """Compute the data guardrails and send them (tag ``automl.guardrails``, each detail cut to
    1,000 characters: a tag holds 8,000)."""
    from openaml.automl._data import read_mltable
    from openaml.automl._guardrails import guardrails_of

    t0 = time.time()
    try:
        items = guardrails_of(read_mltable(args.training_data), task=ws["task"], target=ws["target"],
                              n_cross_validations=ws.get("n_cross_validations"),
                              featurization=ws.get("featurization"), forecasting=ws.get("forecasting"))
    except Exception:  # noqa: BLE001 - the AutoML job computes them at its end
        traceback.print_exc()
        return
    for g in items:
        if len(str(g.get("details") or "")) > 1000:
            g["details"] = str(g["details"])[:997] + "..."
    channel.tag("automl.guardrails", json.dumps(items, default=str)[:8000])
    print(f"worker: guardrails computed in {time.time() - t0:.2f} s", flush=True)


def _loss(metric: str, value: float) -> float:
    from openaml.automl._metrics import loss_of

    return loss_of(metric, value)


def run_one(settings: dict[str, Any], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Train trial ``settings`` in ``folder`` (its ``outputs/``): ``result.json`` and ``log.txt``
    written there; returns the result ``{"metrics", "params", "tags", "error", "seconds"}``."""
    from openaml.automl import _trial

    collector = _trial.Collector()
    _trial._SINK = collector
    here = os.getcwd()
    log = io.StringIO()
    error = None
    t0 = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                _trial.run_trial(settings, args)
            except Exception as exc:  # noqa: BLE001 - the trial fails, the worker goes on
                traceback.print_exc()
                error = f"{type(exc).__name__}: {exc}"
    finally:
        os.chdir(here)
        _trial._SINK = None
    result = {"metrics": collector.metrics, "params": collector.params, "tags": collector.tags, "error": error,
              "seconds": round(time.time() - t0, 3)}
    (folder / "result.json").write_text(json.dumps(result, default=str))
    (folder / "log.txt").write_text(log.getvalue())
    return result


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("OPENAML_AUTOML_WARM_FD"):  # the runner connected this worker to the warm process
        from openaml.automl._warm import run_warm

        code = run_warm(list(sys.argv[1:] if argv is None else argv))
        if code is not None:
            return code
    ap = argparse.ArgumentParser(prog="openaml.automl._worker")
    ap.add_argument("--training_data", required=True)
    ap.add_argument("--validation_data")
    ap.add_argument("--test_data")
    args = ap.parse_args(argv)
    for key in ("training_data", "validation_data", "test_data"):
        if getattr(args, key):
            setattr(args, key, str(Path(getattr(args, key)).resolve()))
    args.member = []
    sys.modules.setdefault("ray", None)  # type: ignore[arg-type] # FLAML imports ray.tune when installed
    ws = json.loads(os.environ["OPENAML_AUTOML_WORKER"])
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(ws.get("n_jobs") or 1))
    _cached_reader()
    from openaml.automl import _trial

    _trial._CACHE = {}
    from openaml.automl._search import Search

    channel = _Channel()
    if ws.get("guardrails"):
        _guardrails(ws, args, channel)
    metric = ws["metric"]
    search = Search(ws["task"], ws["ftask"], list(ws["algorithms"]), tuple(ws["data_size"]), _zero_shot(ws, args),
                    seed=20 + int(ws.get("worker") or 0))
    history: list[tuple[str, dict[str, Any], float | None]] = [(a, c, v) for a, c, v in ws.get("history") or []]
    losses = [v for _, _, v in history if v is not None]
    best = min(losses) if losses else None
    exit_loss = ws.get("exit_loss")
    deadline = float(ws.get("deadline") or 1e18)
    # with ensembles, the search ends reserve_s before the job's deadline: the ensembles' time
    search_end = deadline - float(ws.get("reserve_s") or 0)
    j = int(ws.get("first") or 0)
    quota = int(ws.get("quota") or 10**6)
    seconds: dict[str, float] = {}  # algorithm -> how long its last trial took here
    spent: dict[str, float] = {}  # algorithm -> how long its trials took here, all told
    work = Path(tempfile.mkdtemp(prefix="automl-trials-", dir=os.getcwd()))
    print(f"worker {ws.get('worker')}: algorithms {', '.join(ws['algorithms'])}; quota {quota}", flush=True)
    while quota > 0:
        now = time.time()
        if now >= search_end - 1:
            print("worker: the search's time is up" + (" (the rest is the ensembles')" if search_end < deadline
                                                        else " (limits.timeout_minutes)"), flush=True)
            break
        stop = channel.stop_requested()
        if stop:
            print(f"worker: stopped by the AutoML job: {stop}", flush=True)
            break
        found = search.suggest(f"t{j}", history, channel.peers(), spent)
        if found is None:
            print("worker: the search has converged on every learner", flush=True)
            break
        algorithm, learner, config = found
        took = seconds.get(algorithm)
        # a tree ensemble stops growing at its time limit (the search's end): it runs; another learner
        # whose last trial here would run into the ensembles' time ends the search
        bounded = learner in _BOUNDED and ws["task"] != "forecasting"
        if search_end < deadline and took is not None and not bounded and now + 1.5 * took > search_end:
            # its last trial of this learner took `took` s: this one would run into the ensembles' time
            print(f"worker: the next {algorithm} trial (about {took:.1f} s) would not end before the search's "
                  "end: the search ends here", flush=True)
            break
        limit = min(float(ws.get("trial_limit_s") or 1e9), search_end - now)
        settings = {k: v for k, v in ws.items()
                    if k not in ("algorithms", "zero_shot", "history", "data_size", "ftask", "guardrails")}
        settings.update(algorithm=algorithm, flaml_learner=learner, config=config, time_limit_s=max(1.0, limit),
                        best_loss=best)
        record = {"state": "running", "t0": now, "algorithm": algorithm, "learner": learner, "config": config}
        channel.report(j, record)
        folder = work / str(j)
        # fault injection for the tests of limits.trial_timeout_minutes: the first trial of a worker that
        # replaces none sleeps this long before training (a trial that runs over, without a big data set)
        delay = float(os.environ.get("OPENAML_AUTOML_TEST_FIRST_TRIAL_DELAY_S") or 0)
        if delay and j == 0 and not ws.get("history"):
            time.sleep(delay)
        result = run_one(settings, args, folder)
        seconds[algorithm] = float(result["seconds"])
        spent[algorithm] = spent.get(algorithm, 0.0) + seconds[algorithm]
        value = result["metrics"].get(metric)
        loss = None if value is None or result["error"] else _loss(metric, float(value))
        channel.report(j, {**record, "state": "done", "t1": time.time()}, folder)
        print(f"trial {j} {algorithm}: {metric} = {value}" + (f" ({result['error']})" if result["error"] else ""),
              flush=True)
        history.append((algorithm, config, loss))
        search.tell(f"t{j}", loss)
        if loss is not None and (best is None or loss < best):
            best = loss
        j += 1
        quota -= 1
        if exit_loss is not None and best is not None and best <= float(exit_loss):
            print("worker: limits.exit_score reached", flush=True)
            break
    if ws.get("ensembles"):
        print(f"worker: the search ended at {_clock()}", flush=True)
        channel.flush()  # every trial reported before the job hears the search ended
        channel.tag(_SEARCHED_TAG, str(j))
        print(f"worker: told the AutoML job at {_clock()}", flush=True)
        _ensembles(ws, args, channel, work, j, deadline)
    channel.close()
    return 0


def _ensembles(ws: dict[str, Any], args: argparse.Namespace, channel: _Channel, work: Path, j: int,
               deadline: float) -> None:
    """The ensemble worker's last phase: wait for the AutoML job's word (tag ``automl.ensemble``:
    ``{"members": [trial names], "kinds": [...], "order": n}``, ``n`` the kinds handed to it so
    far, the members' ``model.pkl`` and ``oof.npz`` as ``<trial>/...`` in the worker run's
    ``ensemble.tar``; or ``automl.end``: no more), run each ensemble as this worker's next
    trials, reported as the others, then say so (tag ``automl.ensembled``: ``n``) and wait for the
    next word: the job may hand it a kind that another ensemble worker, still training, was to build."""
    done = 0
    members: list[str] = []
    ens_args = args
    base = {k: v for k, v in ws.items()
            if k not in ("algorithms", "zero_shot", "history", "data_size", "ftask", "guardrails", "ensembles")}
    while True:
        order: dict[str, Any] | None = None
        while time.time() < deadline - 1:
            tags = channel.tags()
            if tags.get(_ENSEMBLE_TAG):
                found = json.loads(tags[_ENSEMBLE_TAG])
                if int(found.get("order") or 0) > done:
                    order = found
                    break
            if tags.get(_END_TAG):
                print(f"worker: {'no more ensembles' if done else 'no ensembles'}: {tags[_END_TAG]}", flush=True)
                return
            time.sleep(0.1)
        if order is None:
            print("worker: the job's time limit is reached", flush=True)
            return
        print(f"worker: handed {', '.join(order.get('kinds') or [])} at {_clock()}", flush=True)
        if not members:
            members = list(order["members"])
            local = work / "ensemble"
            tar = channel.client.download_artifacts(channel.run_id, "ensemble.tar", str(work))
            with tarfile.open(tar) as tf:
                tf.extractall(local, filter="data")
            Path(tar).unlink()
            ens_args = argparse.Namespace(**{**vars(args), "member": [str(local / m) for m in members]})
            print(f"worker: the members' files downloaded at {_clock()}", flush=True)
        for kind in order.get("kinds") or []:
            now = time.time()
            if now >= deadline - 1:
                break
            algorithm = "VotingEnsemble" if kind == "vote_ensemble" else "StackEnsemble"
            settings = {**base, "algorithm": algorithm, "learner": kind, "flaml_learner": kind, "members": members,
                        "stack": ws.get("stack") or {}, "time_limit_s": max(1.0, deadline - now)}
            record = {"state": "running", "t0": now, "algorithm": algorithm, "learner": kind,
                      "config": {"members": members}, "ensemble": True}
            channel.report(j, record)
            folder = work / str(j)
            result = run_one(settings, ens_args, folder)
            channel.report(j, {**record, "state": "done", "t1": time.time()}, folder)
            print(f"trial {j} {algorithm}: {ws['metric']} = {result['metrics'].get(ws['metric'])}"
                  + (f" ({result['error']})" if result["error"] else ""), flush=True)
            j += 1
        done = int(order["order"])
        channel.flush()  # its trials reported before the job hears it is free
        channel.tag(_ENSEMBLED_TAG, str(done))


if __name__ == "__main__":
    sys.exit(main())
