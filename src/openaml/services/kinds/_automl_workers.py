"""The AutoML job's trial workers, server side: start them, turn their reports into trial child
jobs, stop and replace them (the worker itself: :mod:`openaml.automl._worker`).

A worker is a child command job of the AutoML job (property ``openaml.automl_role: worker``,
named ``<job>_worker_<slot>``, a replacement ``<job>_worker_<slot>_r<n>``), run by the runner like
any job. It is not a trial: ``job show`` lists trials only. Each controller pass reads every
worker's run tags (``automl.trial.<j>``) and, for a trial it has not recorded yet, creates the
trial's child job through the job core (the command kind's validation, its MLflow run nested
under the AutoML job's run, the job row), Running from the time the worker started it; when the
worker reports it done, the trial's files move from the worker's run (``trials/<j>/outputs``) to
the child's run (``outputs/``), its metrics, params and tags are logged on the child's run, its
log lines appended to the child's log, and the child ends Completed (or Failed with the trial's
error). A trial over ``limits.trial_timeout_minutes`` ends Canceled and its worker is canceled (the
runner ends its process group) and replaced by a worker that resumes its share of the search.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.errors import ConflictError, OpenAMLError

__all__ = ["WorkerPool", "is_worker", "reserve_s"]

log = logging.getLogger("openaml.automl")

ROLE = "openaml.automl_role"
_GRACE_S = 2.0  # a trial's own deadline is checked by the worker; the job's kill comes this much later


def reserve_s(row: dict[str, Any]) -> float:
    """The seconds before ``limits.timeout_minutes`` kept for the ensembles (the search ends then):
    5 % of the timeout, 6 s at least, 60 s at most."""
    timeout_s = int(((row["spec"].get("limits") or {}).get("timeout_minutes")) or 360) * 60
    return min(60.0, max(6.0, 0.05 * timeout_s))


def is_worker(job: dict[str, Any]) -> bool:
    """Whether child job ``job`` is one of an AutoML job's trial workers (not a trial)."""
    return ((job.get("spec") or {}).get("properties") or {}).get(ROLE) == "worker"


def _info(job: dict[str, Any]) -> dict[str, Any]:
    return job["runtime"].get("automl_worker") or json.loads(((job["spec"] or {}).get("properties") or {})
                                                            .get("openaml.automl_worker") or "{}")


class WorkerPool:
    """Mixed into the AutoML kind: ``ctx``, ``core``, ``jobs``, ``log``, ``_settings`` and
    ``_data_inputs`` come from it."""

    ctx: Any
    core: Any

    # ------------------------------------------------------------------ start
    def _start_workers(self, row: dict[str, Any]) -> None:
        """Submit ``max_concurrent_trials`` workers (at most one per algorithm), each with its share of
        the algorithms and of ``max_trials``."""
        rt, spec = row["runtime"], row["spec"]
        lim = spec.get("limits") or {}
        algorithms = list(rt["algorithms"])
        n = max(1, min(int(lim.get("max_concurrent_trials") or 1), len(algorithms)))
        total = int(lim.get("max_trials") or 1000)
        for slot in range(n):
            quota = total // n + (1 if slot < total % n else 0)
            if quota <= 0:
                continue
            mine = algorithms[slot::n]
            if not self._submit_worker(row, slot, f"{row['name']}_worker_{slot}", mine, quota, []):
                return

    def _submit_worker(self, row: dict[str, Any], slot: int, wname: str, algorithms: list[str], quota: int,
                       history: list[list[Any]]) -> bool:
        spec, rt = row["spec"], row["runtime"]
        lim = spec.get("limits") or {}
        started = row["start_time"] or row["created_at"]
        deadline = started.timestamp() + int(lim.get("timeout_minutes") or 360) * 60
        metric = rt["metric"]
        kinds = self._ensemble_kinds(row)  # type: ignore[attr-defined]
        settings = {**self._settings(row), "worker": slot, "algorithms": algorithms, "ftask": rt["ftask"],  # type: ignore[attr-defined]
                    "data_size": rt["data_size"], "quota": quota, "deadline": deadline, "history": history,
                    "trial_limit_s": (lim.get("trial_timeout_minutes") or 10**6) * 60,
                    # the first worker computes the guardrails before its first trial; the first
                    # len(kinds) workers run the ensembles, side by side, once the search ended
                    "guardrails": slot == 0 and "guardrails" not in rt,
                    "ensembles": kinds if slot < len(kinds) else [], "reserve_s": reserve_s(row) if kinds else 0,
                    "stack": (spec.get("training") or {}).get("stack_ensemble_settings") or {}}
        if lim.get("exit_score") is not None:
            from openaml.automl._metrics import loss_of

            settings["exit_loss"] = loss_of(metric, float(lim["exit_score"]))
        inputs = self._data_inputs(row)  # type: ignore[attr-defined]
        args = " ".join(f"--{k} ${{{{inputs.{k}}}}}" for k in inputs)
        info = {"slot": slot, "algorithms": algorithms, "quota": quota, "history": history,
                "ensembles": bool(settings["ensembles"])}
        child: dict[str, Any] = {
            "type": "command", "name": wname, "command": f"python -m openaml.automl._worker {args}",
            "inputs": inputs, "compute": row["compute"], "experiment_name": row["experiment_name"],
            "parent_job_name": row["name"], "display_name": f"automl_worker_{slot}",
            "environment_variables": {"OMP_NUM_THREADS": str(settings["n_jobs"]),
                                      "OPENBLAS_NUM_THREADS": str(settings["n_jobs"]),
                                      **(spec.get("environment_variables") or {}),
                                      "OPENAML_AUTOML_WORKER": json.dumps(settings)},
            "tags": {"openaml.automl": row["name"], ROLE: "worker"},
            "properties": {ROLE: "worker", "openaml.automl_worker": json.dumps(info)},
        }
        if spec.get("environment_id"):
            child["environment"] = spec["environment_id"]
        if spec.get("resources"):
            child["resources"] = spec["resources"]
        try:
            self.core.submit(child)
        except ConflictError:
            return True
        except OpenAMLError as exc:
            self._finish(row, JobStatus.FAILED, error=f"worker {wname} could not be submitted: {exc.message}")  # type: ignore[attr-defined]
            return False
        self.ctx.store.update_job(wname, runtime_update={"automl_worker": info})
        self.log(row["name"], f"worker {wname} submitted: {', '.join(algorithms)}; up to {quota} trials")  # type: ignore[attr-defined]
        return True

    # ------------------------------------------------------------------ follow
    def _mirror(self, row: dict[str, Any], workers: list[dict[str, Any]], trials: list[dict[str, Any]]) -> bool:
        """Record what the workers reported: trials started (child jobs created) and done (files,
        metrics, end). Returns whether anything changed."""
        known = {(t["runtime"].get("automl_trial") or {}).get("key"): t for t in trials}
        known.pop(None, None)
        changed = False
        count = len(trials)
        for w in workers:
            tags = self.ctx.tracking.run_summary(w["name"])["tags"]
            if "guardrails" not in row["runtime"] and tags.get("automl.guardrails"):
                try:
                    self._record_guardrails(row, json.loads(tags["automl.guardrails"]))  # type: ignore[attr-defined]
                except ValueError:
                    log.warning("automl %s: unreadable guardrails from %s", row["name"], w["name"])
            reports = []
            for key, value in tags.items():
                if key.startswith("automl.trial."):
                    try:
                        reports.append((int(key.rsplit(".", 1)[1]), json.loads(value)))
                    except ValueError:
                        continue
            for j, rec in sorted(reports, key=lambda jr: jr[0]):
                key = f"{w['name']}/{j}"
                child = known.get(key)
                if child is None:
                    child = self._create_trial(row, w, j, rec, count)
                    if child is None:
                        continue
                    count += 1
                    known[key] = child
                    changed = True
                if rec.get("state") == "done" and child["status"] not in TERMINAL_JOB_STATUSES:
                    self._record_trial(row, w, j, child, rec)
                    changed = True
        return changed

    def _create_trial(self, row: dict[str, Any], w: dict[str, Any], j: int, rec: dict[str, Any],
                      index: int) -> dict[str, Any] | None:
        """The trial's child job: a command job's record (validated by the command kind, its MLflow
        run nested under the AutoML job's), Running since the worker started it; no runner."""
        name = f"{row['name']}_{index}"
        algorithm = rec.get("algorithm") or "?"
        config: dict[str, Any] = dict(rec.get("config") or {})
        info = {"index": index, "algorithm": algorithm, "learner": rec.get("learner"), "config": config,
                **({"ensemble": True} if rec.get("ensemble") else {})}
        inputs = self._data_inputs(row)  # type: ignore[attr-defined]
        spec = {"type": "command", "name": name, "inputs": inputs, "compute": row["compute"],
                "command": f"python -m openaml.automl._trial  # trial {j} of AutoML worker job {w['name']}, in-process",
                "experiment_name": row["experiment_name"], "parent_job_name": row["name"],
                "display_name": f"{algorithm}_{index}",
                "tags": {"openaml.automl": row["name"], "openaml.trial_index": str(index), "automl_algorithm": algorithm,
                         "openaml.automl_worker": w["name"]},
                "properties": {"openaml.automl": json.dumps(info)}}
        if row["spec"].get("environment_id"):
            spec["environment"] = row["spec"]["environment_id"]
        kind = self.core.kind("command")
        try:
            plan = kind.validate(spec, source=None, name=name)
            plan.runtime.update(automl=info, automl_trial={"key": f"{w['name']}/{j}", "worker": w["name"], "local": j})
            # the job core's own record path (name check, MLflow run, row); no start: the worker runs it
            self.core._create(kind, name, plan)
        except ConflictError:
            return None
        except OpenAMLError as exc:
            self.log(row["name"], f"trial {j} of {w['name']} could not be recorded: {exc.message}")  # type: ignore[attr-defined]
            return None
        t0 = datetime.fromtimestamp(float(rec.get("t0") or time.time()), UTC)
        self.ctx.tracking.set_run_running(name)
        self.ctx.tracking.set_tags(name, {"automl_training_started_at": f"{float(rec.get('t0') or 0):.3f}"})
        done = self.ctx.store.transition_job(name, JobStatus.RUNNING, from_statuses=[JobStatus.NOT_STARTED],
                                             start_time=t0)
        self.log(row["name"], f"trial {name} started in {w['name']}: {algorithm} "  # type: ignore[attr-defined]
                 + " ".join(f"{k}={v!r}" for k, v in list(config.items())[:8]))
        return done or self.ctx.store.get_job(name)

    def _record_trial(self, row: dict[str, Any], w: dict[str, Any], j: int, child: dict[str, Any],
                      rec: dict[str, Any]) -> None:
        """Move the trial's files to its run, log its metrics, params, tags and lines, end it."""
        name = child["name"]
        result: dict[str, Any] = {"error": "its worker reported no result"}
        try:
            tar = self.ctx.tracking.run_artifact_dir(w["name"]) / "trials" / f"{j}.tar"
            dst = self.ctx.tracking.run_artifact_dir(name)
            if rec.get("lost") or not tar.exists():
                result = {"error": f"its worker {w['name']} could not send its files"}
            else:
                result = self._unpack(tar, dst, name)
            tar.unlink(missing_ok=True)
            if result.get("metrics"):
                self.ctx.tracking.log_metrics(name, result["metrics"])
            if result.get("params"):
                self.ctx.tracking.log_params(name, result["params"])
            if result.get("tags"):
                self.ctx.tracking.set_tags(name, result["tags"])
        except Exception as exc:  # noqa: BLE001 - the trial ends Failed with the reason, the job goes on
            log.exception("automl %s: recording trial %s failed", row["name"], name)
            result = {"error": f"recording its result failed: {type(exc).__name__}: {exc}"}
        status = JobStatus.FAILED if result.get("error") else JobStatus.COMPLETED
        end = datetime.fromtimestamp(float(rec.get("t1") or time.time()), UTC)
        self._end_trial(name, status, result.get("error"), end)

    def _unpack(self, tar: Any, dst: Any, name: str) -> dict[str, Any]:
        """The trial's tar: ``outputs/`` into the child's run folder, ``log.txt`` onto its log;
        returns ``result.json``."""
        import tarfile

        result: dict[str, Any] = {"error": "its worker reported no result"}
        with tarfile.open(tar) as tf:
            members = tf.getmembers()
            for m in members:
                path = m.name.removeprefix("./")
                if path == "result.json":
                    result = json.loads(tf.extractfile(m).read())  # type: ignore[union-attr]
                elif path == "log.txt":
                    lines = tf.extractfile(m).read().decode(errors="replace").splitlines()  # type: ignore[union-attr]
                    if lines:
                        self.core.append_log(name, *lines)
            outs = [m for m in members if m.name.removeprefix("./").startswith("outputs")]
            dst.mkdir(parents=True, exist_ok=True)
            tf.extractall(dst, members=outs, filter="data")
        return result

    def _end_trial(self, name: str, status: str, error: str | None, end: datetime | None = None) -> None:
        done = self.ctx.store.transition_job(name, status, from_statuses=[JobStatus.RUNNING, JobStatus.NOT_STARTED,
                                                                          JobStatus.CANCEL_REQUESTED],
                                             error=error, end_time=end or datetime.now(UTC))
        if done is None:
            return
        self.ctx.tracking.end_run(name, status)
        self.core.scheduler.after_terminal(done)

    def _share_peers(self, row: dict[str, Any], workers: list[dict[str, Any]], trials: list[dict[str, Any]]) -> None:
        """Tell the live workers the best loss and configuration per algorithm over every worker's
        completed search trials (tag ``automl.peers``, written when it changed): each worker's
        search ranks the learners it refines by it (:meth:`openaml.automl._search.Search.suggest`)."""
        from openaml.automl._metrics import loss_of

        metric = row["runtime"]["metric"]
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for t in trials:
            info = t["runtime"].get("automl") or {}
            value = (t["runtime"].get("automl_result") or {}).get("value")
            a = info.get("algorithm")
            if value is None or not a or info.get("ensemble") or t["status"] != JobStatus.COMPLETED:
                continue
            loss = loss_of(metric, float(value))
            if a not in best or loss < best[a][0]:
                best[a] = (loss, dict(info.get("config") or {}))
        text = json.dumps({a: [v, c] for a, (v, c) in sorted(best.items())}, sort_keys=True, default=str)
        if not best or len(text) > 8000 or text == row["runtime"].get("automl_peers"):
            return
        for w in workers:
            if w["status"] not in TERMINAL_JOB_STATUSES:
                try:
                    self.ctx.tracking.set_tags(w["name"], {"automl.peers": text})
                except Exception:  # noqa: BLE001 - a worker ranks by its own trials meanwhile
                    log.exception("sharing the best per learner with worker %s", w["name"])
        self.ctx.store.update_job(row["name"], runtime_update={"automl_peers": text})
        row["runtime"]["automl_peers"] = text

    def _hurry(self, row: dict[str, Any], workers: list[dict[str, Any]]) -> None:
        """From a second before the search's end until every ensemble worker has its last word, a
        controller pass every 0.1 s instead of every 0.5 s: a worker waits for its word between its
        search and the ensembles (each wait is a worker's core idle)."""
        closed = set(row["runtime"].get("ensembles_closed") or [])
        if not any(w["status"] not in TERMINAL_JOB_STATUSES and _info(w).get("ensembles") and w["name"] not in closed
                   for w in workers):
            return
        started = (row["start_time"] or row["created_at"]).timestamp()
        timeout_s = int(((row["spec"].get("limits") or {}).get("timeout_minutes")) or 360) * 60
        if time.time() < started + timeout_s - reserve_s(row) - 1.0:
            return
        hurrying: set[str] = self.__dict__.setdefault("_hurrying", set())
        if row["name"] in hurrying:
            return
        hurrying.add(row["name"])

        def fire() -> None:
            hurrying.discard(row["name"])
            self.core.request_tick()

        timer = threading.Timer(0.1, fire)
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ ensembles in the worker
    def _worker_ensembles(self, row: dict[str, Any], workers: list[dict[str, Any]], trials: list[dict[str, Any]],
                          metric: str, members: list[str], kinds: list[str]) -> None:
        """Hand the ensembles to the ensemble workers (the first ``len(kinds)`` slots) as each ends
        its search (tag ``automl.searched``) or the ensembles it was handed (``automl.ensembled``),
        with the trials completed at the first handing as the members of every ensemble (their files
        in the worker's run as ``ensemble.tar``): two ready in the same pass build one each, side by
        side; one ready while another ensemble worker still searches builds one, then the next when
        it is free again unless the other, ready by then, took it; one ready alone builds them all,
        one after the other. A worker still training is
        not waited for: its trial goes on until the timeout and competes with the ensembles. Once
        every ensemble is handed, each ensemble worker hears ``automl.end`` (after what it was handed)."""
        rt = row["runtime"]
        live = [w for w in workers if w["status"] not in TERMINAL_JOB_STATUSES and _info(w).get("ensembles")]
        if not live:
            return  # none waits: the ensembles run as one-trial child jobs (or not at all)
        handed: dict[str, list[str]] = {k: list(v) for k, v in (rt.get("ensembles_handed") or {}).items()}
        closed: set[str] = set(rt.get("ensembles_closed") or [])
        pending = [k for k in kinds if k not in {x for ks in handed.values() for x in ks}]
        chosen = list(rt.get("ensemble_members") or members)
        ready: list[dict[str, Any]] = []
        searching: list[dict[str, Any]] = []
        for w in live:
            if w["name"] in closed:
                continue
            tags = self.ctx.tracking.run_summary(w["name"])["tags"]
            if w["name"] not in handed:
                (ready if "automl.searched" in tags else searching).append(w)
            elif handed[w["name"]] and tags.get("automl.ensembled") == str(len(handed[w["name"]])):
                ready.append(w)  # built what it was handed: free for more
        if not ready:
            return
        import tarfile

        for w in ready:
            if len(chosen) < 2 or not pending:
                why = "fewer than 2 trials scored" if len(chosen) < 2 else "the other workers build the ensembles"
                self.ctx.tracking.set_tags(w["name"], {"automl.end": why})
                handed.setdefault(w["name"], [])
                closed.add(w["name"])
                continue
            # one kind when another worker may take the next: ready in this pass, or still searching
            mine = pending[:1] if w is not ready[-1] or searching else list(pending)
            pending = [k for k in pending if k not in mine]
            # a worker's token reads its own run: the members' files go there, as one tar (one request)
            tar = self.ctx.tracking.run_artifact_dir(w["name"]) / "ensemble.tar"
            if not tar.exists():
                tar.parent.mkdir(parents=True, exist_ok=True)
                part = tar.with_name("ensemble.tar.part")
                with tarfile.open(part, "w") as tf:
                    for m in chosen:
                        src = self.ctx.tracking.run_artifact_dir(m) / "outputs"
                        for f in ("model.pkl", "oof.npz"):
                            tf.add(src / f, arcname=f"{m}/{f}")
                part.replace(tar)
            handed[w["name"]] = [*handed.get(w["name"], []), *mine]
            self.ctx.tracking.set_tags(w["name"], {"automl.ensemble": json.dumps(
                {"members": chosen, "kinds": mine, "order": len(handed[w["name"]])})})
            self.log(row["name"], f"{', '.join(mine)} of {', '.join(chosen)} handed to {w['name']}")  # type: ignore[attr-defined]
        if not pending:  # nothing left to hand: each ends after what it builds
            for w in live:
                if w["name"] not in closed:
                    self.ctx.tracking.set_tags(w["name"], {"automl.end": "the other workers build the ensembles"
                                                           if not handed.get(w["name"]) else "none left"})
                    closed.add(w["name"])
        update: dict[str, Any] = {"ensembles_handed": handed, "ensembles_closed": sorted(closed)}
        if any(handed.values()):
            update["ensemble_members"] = chosen
        if not pending or len(chosen) < 2:
            update["ensembles_submitted"] = True
        self.ctx.store.update_job(row["name"], runtime_update=update)
        rt.update(update)

    # ------------------------------------------------------------------ stop, time out, replace
    def _request_stop(self, workers: list[dict[str, Any]], reason: str) -> None:
        """Ask the workers to start no more trials (they end after the one they run)."""
        for w in workers:
            if w["status"] not in TERMINAL_JOB_STATUSES:
                try:
                    self.ctx.tracking.set_tags(w["name"], {"automl.stop": reason})
                except Exception:  # noqa: BLE001
                    log.exception("asking worker %s to stop", w["name"])

    def _stop_now(self, workers: list[dict[str, Any]], trials: list[dict[str, Any]], reason: str) -> None:
        """End the workers (the runner ends their processes) and the trials they run (Canceled)."""
        for w in workers:
            if w["status"] not in TERMINAL_JOB_STATUSES and w["status"] != JobStatus.CANCEL_REQUESTED:
                self.jobs.cancel(w["name"], reason=reason)  # type: ignore[attr-defined]
        for t in trials:
            if t["status"] not in TERMINAL_JOB_STATUSES and t["runtime"].get("automl_trial"):
                self._end_trial(t["name"], JobStatus.CANCELED, reason)

    def _follow(self, row: dict[str, Any], workers: list[dict[str, Any]], trials: list[dict[str, Any]],
                stopping: str | None) -> None:
        """Trials over ``trial_timeout_minutes`` (Canceled; their worker replaced) and trials whose
        worker ended before reporting them (Failed with the worker's end)."""
        lim = row["spec"].get("limits") or {}
        limit = lim.get("trial_timeout_minutes")
        by_name = {w["name"]: w for w in workers}
        now = time.time()
        for t in trials:
            tr = t["runtime"].get("automl_trial")
            if not tr or t["status"] in TERMINAL_JOB_STATUSES:
                continue
            w = by_name.get(tr["worker"])
            if w is None or w["status"] in TERMINAL_JOB_STATUSES:
                why = f"its worker {tr['worker']} ended ({w['status'] if w else 'gone'}) before reporting it"
                if w is not None and w.get("error"):
                    why += f": {w['error']}"
                self._end_trial(t["name"], JobStatus.FAILED, why)
                continue
            began = t["start_time"].timestamp() if t["start_time"] else now
            if limit and now - began > float(limit) * 60 + _GRACE_S and w["status"] != JobStatus.CANCEL_REQUESTED:
                why = (f"limits.trial_timeout_minutes ({limit} min) was reached; the trial was stopped and its worker "
                       f"{w['name']} replaced")
                self.jobs.cancel(w["name"], reason=f"trial {t['name']} ran over limits.trial_timeout_minutes")  # type: ignore[attr-defined]
                self._end_trial(t["name"], JobStatus.CANCELED, why)
                self.log(row["name"], f"trial {t['name']}: {why}")  # type: ignore[attr-defined]
                if stopping is None:
                    self._replace(row, w, trials)

    def _replace(self, row: dict[str, Any], w: dict[str, Any], trials: list[dict[str, Any]]) -> None:
        """A new worker for ``w``'s slot: its algorithms, the rest of its quota, its trials as history."""
        from openaml.automl._metrics import loss_of

        info = _info(w)
        metric = row["runtime"]["metric"]
        mine = [t for t in trials if (t["runtime"].get("automl_trial") or {}).get("worker") == w["name"]]
        history: list[list[Any]] = [list(h) for h in info.get("history") or []]
        for t in mine:
            res = t["runtime"].get("automl_result") or {}
            a = t["runtime"].get("automl") or {}
            value = res.get("value")
            history.append([a.get("algorithm"), a.get("config") or {}, None if value is None else loss_of(metric, value)])
        quota = int(info.get("quota") or 0) - len(mine)
        if quota <= 0:
            return
        base = f"{row['name']}_worker_{info.get('slot', 0)}"
        existing = {c["name"] for c in self.ctx.store.list_jobs(parent_name=row["name"], include_archived=True)}
        n = 1
        while f"{base}_r{n}" in existing:
            n += 1
        self._submit_worker(row, int(info.get("slot", 0)), f"{base}_r{n}", list(info.get("algorithms") or []), quota,
                            history)
