"""The driver: plans the mini-batches, keeps ``instance_count x max_concurrency_per_instance`` workers
busy, retries, counts against the thresholds, journals each mini-batch's end and assembles the
output (the package's docstring has the rules)."""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .common import INTERNAL_PREFIX, PRS_FLAGS_USED, STATE_DIR, entry_script, write_atomic
from .plan import plan_mini_batches
from .pool import PoolClient, pool_main
from .worker import worker_main
from .zygote import Zygote, preload_file, zygote_main

__all__ = ["Driver", "main"]

POOL_FD_ENV = "OPENAML_PARALLEL_POOL_FD"
# the log line of a job that completed with failed mini-batches (the server makes it a job warning)
FAILED_WARNING = "warning: completed with failures:"


class _Worker:
    """A worker process: forked by the deployment's warm pool (``pool``), or by the job's zygote when
    it is ready (``forked``), else a fresh process of the entry script (``--worker``); tasks go down
    one pipe, results come up another."""

    def __init__(self, wid: int, driver: Driver) -> None:
        self.id = wid
        self.ready = False
        self.task: dict[str, Any] | None = None
        self.started = 0.0
        self.born = time.monotonic()  # init() must end within the driver's init_timeout of this
        self.dead = False
        self.zygote: Zygote | None = None
        self.pool: PoolClient | None = None
        self.own_pid: int | None = None  # as the worker said it (the driver's PID namespace)
        self.proc: subprocess.Popen[bytes] | None = None
        r_task, w_task = os.pipe()
        r_res, w_res = os.pipe()
        logfile = driver.logs / "user" / "stdout" / f"worker_{wid}.txt"
        if driver.pool is not None and driver.pool.ok:
            try:
                driver.pool.fork(wid, r_task, w_res, logfile)
                self.pool = driver.pool
            except OSError:  # the pool is gone: this and later workers start here
                driver.pool.ok = False
        if self.pool is None and driver.zygote is not None and driver.zygote.ready:
            try:
                driver.zygote.fork(self, r_task, w_res, logfile)
                self.zygote = driver.zygote
            except OSError:  # the zygote is gone: this and later workers start as fresh processes
                driver.zygote.ready = False
        if self.zygote is None and self.pool is None:
            log = open(logfile, "ab", buffering=0)  # noqa: SIM115
            self.proc = subprocess.Popen(
                [sys.executable, entry_script(), "--worker", str(r_task), str(w_res), str(wid)],
                pass_fds=(r_task, w_res), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()
        os.close(r_task)
        os.close(w_res)
        self.out = os.fdopen(w_task, "w", encoding="utf-8", buffering=1)
        self.out.write(json.dumps(driver.worker_cfg) + "\n")
        self.q = driver.q
        threading.Thread(target=self._read, args=(os.fdopen(r_res, "r", encoding="utf-8"),), daemon=True).start()

    def _read(self, fh: Any) -> None:
        for line in fh:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if set(msg) == {"pid"}:  # the worker's first line
                self.own_pid = int(msg["pid"])
                continue
            self.q.put((self, msg))
        self.q.put((self, {"eof": True}))

    def send(self, task: dict[str, Any]) -> None:
        self.task = task
        self.started = time.monotonic()
        self.out.write(json.dumps(task) + "\n")

    def pid(self, wait: float = 0.0) -> int | None:
        """The worker's pid (a forked one's as the zygote reported it, waiting up to ``wait`` s)."""
        if self.proc is not None:
            return self.proc.pid
        end = time.monotonic() + wait
        if self.zygote is None:  # forked by the pool: the pid it said (it may have died before)
            while self.own_pid is None and not self.dead and time.monotonic() < end:
                time.sleep(0.01)
            return self.own_pid
        while self.id not in self.zygote.pids and time.monotonic() < end:
            time.sleep(0.01)
        return self.zygote.pids.get(self.id)

    def exit_code(self) -> int | None:
        """The exit status once it ended (a forked worker's as the zygote reaped it; None if unknown)."""
        if self.proc is not None:
            return self.proc.wait()
        if self.zygote is None:  # forked by the pool: a child of the job's init, not of the driver
            return None
        pid = self.pid(wait=2.0)
        end = time.monotonic() + 2.0
        while pid is not None and pid not in self.zygote.codes and time.monotonic() < end:
            time.sleep(0.01)
        return self.zygote.codes.get(pid) if pid is not None else None

    def kill(self) -> None:
        pid = self.pid(wait=2.0)
        self.dead = True
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            self.out.close()
        except OSError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Driver:
    def __init__(self, cfg: dict[str, Any], input_path: Path, append_row_to: str | None, program_args: list[str]) -> None:
        self.cfg = cfg
        self.input_path = input_path
        self.program_args = program_args
        self.work = Path.cwd()
        self.state = self.work / STATE_DIR
        self.logs = self.work / "logs"
        for d in (self.state / "rows", self.logs / "user" / "stdout", self.logs / "user" / "error", self.logs / "sys"):
            d.mkdir(parents=True, exist_ok=True)
        self.output_file: Path | None = None
        if append_row_to:
            name = _prs_arg(program_args, "--append_row_file_name") or cfg.get("output_file_name") or "parallel_run_step.txt"
            if os.path.basename(name) != name or name in (".", ".."):  # refused at submission; never written elsewhere
                raise SystemExit(f"--append_row_file_name {name!r} is not a plain file name")
            target = Path(append_row_to)
            self.output_file = target if cfg.get("append_row_type") == "uri_file" else target / name
        self.workers_n = max(1, int(cfg.get("instance_count", 1))) * max(1, int(cfg.get("max_concurrency", 1)))
        self.max_retries = int(cfg.get("max_retries", 3))
        self.timeout = float(cfg.get("timeout", 60))
        # Azure PRS's --first_task_creation_timeout (default 600 s): a worker whose init() has not
        # ended by then is killed and the job fails (a hung init() never holds the compute for ever)
        try:
            self.init_timeout = max(1.0, float(_prs_arg(program_args, "--first_task_creation_timeout") or 600))
        except ValueError:
            self.init_timeout = 600.0
        self.error_threshold = int(cfg.get("error_threshold", -1))
        self.mb_threshold = int(cfg.get("mini_batch_error_threshold", -1))
        # Azure PRS's --allowed_failed_count / --allowed_failed_percent (failed mini-batches allowed, as
        # a count or a percentage of all of them; checked at submission): each applies beside the threshold
        count, percent = (_prs_arg(program_args, f) for f in ("--allowed_failed_count", "--allowed_failed_percent"))
        self.allowed_failed_count = int(count) if count is not None else -1
        self.allowed_failed_percent = float(percent) if percent is not None else -1.0
        self.total = 0
        self.q: queue.Queue[tuple[_Worker | None, dict[str, Any]]] = queue.Queue()
        self.worker_cfg = {"entry_script": str((self.work / cfg["entry_script"]).resolve()),
                           "program_arguments": program_args, "rows_dir": str(self.state / "rows"),
                           "append_row": self.output_file is not None, "logging_level": cfg.get("logging_level", "INFO")}
        self.done: dict[int, dict[str, Any]] = {}
        self.failed: dict[int, dict[str, Any]] = {}
        self.attempts: collections.Counter[int] = collections.Counter()
        self.errors: dict[int, list[str]] = collections.defaultdict(list)
        self.stop_reason: str | None = None
        self.t0 = time.monotonic()
        self.ready_at: float | None = None
        self.unit = "rows" if cfg.get("tabular") else "files"  # what an item is
        self._failed_items = 0
        self._journal_fh: Any = None
        self.zygote: Zygote | None = None
        self.pool: PoolClient | None = None
        self._pool_said = False
        self.preload_file = preload_file(cfg, self.work)
        self._learned = False
        self._dirty = False
        self._synced = 0.0
        self.rows_this_run = 0
        self.plan_notes: list[str] = []  # the plan's warnings (quoted line breaks)

    # ---------------------------------------------------------------- journal
    def _load_journal(self, plan_id: str) -> None:
        marker = self.state / "plan_id"
        journal = self.state / "journal.jsonl"
        if marker.exists() and marker.read_text().strip() != plan_id:
            print("[openaml] parallel: the input or settings changed since the journal was written; starting over",
                  flush=True)
            if journal.exists():  # (no missing_ok: the job's Python may be 3.7)
                journal.unlink()
            for f in (self.state / "rows").iterdir():
                f.unlink()
        tmp = self.state / "plan_id.tmp"
        tmp.write_text(plan_id)
        os.replace(tmp, marker)
        if not journal.exists():
            return
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill: that mini-batch runs again
            if rec.get("status") == "done" and (not self.output_file or self._rows_file(rec["index"]).exists()):
                self._record(self.done, rec)
            elif rec.get("status") == "failed":
                self._record(self.failed, rec)

    def _journal(self, rec: dict[str, Any]) -> None:
        """Append one record: written and flushed at once (a killed driver loses nothing), fsynced by
        :meth:`_sync` at most a second later (an OS crash loses at most that second: those
        mini-batches run again, their rows files are replaced, no row doubles)."""
        if self._journal_fh is None:
            self._journal_fh = open(self.state / "journal.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._journal_fh.write(json.dumps(rec) + "\n")
        self._journal_fh.flush()
        self._dirty = True

    def _sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._journal_fh is not None and self._dirty and (force or now - self._synced >= 1.0):
            os.fsync(self._journal_fh.fileno())
            self._dirty, self._synced = False, now

    def _rows_file(self, index: int) -> Path:
        return self.state / "rows" / f"{index:08d}.txt"

    # ---------------------------------------------------------------- counts
    def failed_items(self) -> int:
        return self._failed_items

    def _record(self, table: dict[int, dict[str, Any]], rec: dict[str, Any]) -> None:
        table[rec["index"]] = rec
        self._failed_items += int(rec.get("failed_items", 0))

    def _check_thresholds(self) -> None:
        if self.stop_reason:
            return
        if self.mb_threshold >= 0 and len(self.failed) > self.mb_threshold:
            self.stop_reason = (f"{len(self.failed)} mini-batches failed, more than mini_batch_error_threshold "
                                f"{self.mb_threshold}")
        elif self.allowed_failed_count >= 0 and len(self.failed) > self.allowed_failed_count:
            self.stop_reason = (f"{len(self.failed)} mini-batches failed, more than --allowed_failed_count "
                                f"{self.allowed_failed_count}")
        elif self.allowed_failed_percent >= 0 and self.total and \
                100.0 * len(self.failed) > self.allowed_failed_percent * self.total:
            self.stop_reason = (f"{len(self.failed)} of {self.total} mini-batches failed, more than "
                                f"--allowed_failed_percent {self.allowed_failed_percent:g}")
        elif self.error_threshold >= 0 and self.failed_items() > self.error_threshold:
            self.stop_reason = f"{self.failed_items()} items failed, more than error_threshold {self.error_threshold}"

    def progress(self, total: int, running: int, final: bool = False) -> str:
        elapsed = max(1e-6, time.monotonic() - self.t0)
        rows = sum(r.get("n_in", 0) for r in self.done.values())
        line = (f"[openaml] parallel: mini-batches {len(self.done)}/{total} done, {len(self.failed)} failed, "
                f"{running} running; {self.unit} {rows} done, {self.failed_items()} failed; "
                f"{self.rows_this_run / elapsed:.1f} {self.unit}/s")
        overview = {"total_mini_batches": total, "completed_mini_batches": len(self.done),
                    "failed_mini_batches": len(self.failed), "running_mini_batches": running,
                    "processed_items": rows, "failed_items": self.failed_items(),
                    "items_per_second": round(self.rows_this_run / elapsed, 2), "elapsed_seconds": round(elapsed, 3),
                    "workers": self.workers_n, "first_worker_ready_seconds": round(self.ready_at or 0.0, 3),
                    "final": final}
        write_atomic(self.logs / "job_progress_overview.txt",
                      "".join(f"{k}: {v}\n" for k, v in overview.items()))
        return line

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        # the workers start (and run init()) while the input is planned: forked by the zygote once it
        # has imported the entry script, else (no fork) fresh processes at once on a fresh start
        pool_fd = os.environ.pop(POOL_FD_ENV, None)  # the deployment's warm pool (the runner's connection)
        if pool_fd and _can_fork():
            try:
                self.pool = PoolClient(int(pool_fd), self.q, self.logs / "sys" / "warm_pool.txt")
                print("[openaml] parallel: workers are forked from the deployment's warm pool (its environment's "
                      "libraries imported already); each imports the entry script and runs init() in this job",
                      flush=True)
            except (OSError, ValueError) as exc:
                print(f"[openaml] parallel: the warm pool is not usable ({exc}); workers start here", flush=True)
                self.pool = None
        if self.pool is None and _can_fork():
            try:
                self.zygote = Zygote(self)
            except OSError as exc:  # workers start as fresh processes
                print(f"[openaml] parallel: workers start as fresh processes: {exc}", flush=True)
                self.zygote = None
        fresh = not (self.state / "journal.jsonl").exists()
        early = [_Worker(i, self) for i in range(self.workers_n)] if fresh and self.zygote is None else []
        plan_notes: list[str] = self.plan_notes
        try:
            plan = plan_mini_batches(self.cfg, self.input_path, plan_notes)
        except BaseException:
            for w in early:
                w.kill()
            if self.zygote is not None:
                self.zygote.close()
            if self.pool is not None:
                self.pool.close()
            raise
        for i, t in enumerate(plan):
            t["index"] = i
        plan_id = hashlib.sha256(json.dumps([self.cfg, [t["source"] for t in plan]], sort_keys=True,
                                            default=str).encode()).hexdigest()
        self._load_journal(plan_id)
        total = self.total = len(plan)
        print(f"[openaml] parallel: {total} mini-batches of {self.input_path} ("
              f"{'files' if not self.cfg.get('tabular') else 'rows'}), {self.workers_n} workers "
              f"(instance_count x max_concurrency_per_instance), max_retries {self.max_retries}, "
              f"timeout {self.timeout:g} s", flush=True)
        for note in [*(self.cfg.get("notes") or []), *plan_notes]:
            print(f"[openaml] parallel: {note}", flush=True)
        if self.done or self.failed:
            print(f"[openaml] parallel: resuming: {len(self.done)} mini-batches done and {len(self.failed)} failed "
                  "in an earlier run are not run again", flush=True)
        if self.allowed_failed_count >= 0 or self.allowed_failed_percent >= 0:
            said = [f"--allowed_failed_count {self.allowed_failed_count}" if self.allowed_failed_count >= 0 else "",
                    f"--allowed_failed_percent {self.allowed_failed_percent:g}" if self.allowed_failed_percent >= 0
                    else ""]
            print(f"[openaml] parallel: {' '.join(x for x in said if x)} applied: the job fails when more "
                  "mini-batches fail (beside mini_batch_error_threshold)", flush=True)
        ignored = [a for a in self.program_args if a.startswith("--") and a not in PRS_FLAGS_USED
                   and not a.startswith(INTERNAL_PREFIX)]
        if ignored:
            print(f"[openaml] parallel: program_arguments {' '.join(ignored)} are passed to the entry script's "
                  "sys.argv; the engine does not use them", flush=True)
        pending = collections.deque(t for t in plan if t["index"] not in self.done and t["index"] not in self.failed)
        self._check_thresholds()
        need = min(self.workers_n, len(pending)) if not self.stop_reason else 0
        for w in early[need:]:
            w.kill()
        if self.zygote is not None and need == 0:
            self.zygote.close()
            self.zygote = None
        workers: list[_Worker] = early[:need]
        if self.zygote is None:
            workers += [_Worker(i, self) for i in range(len(early), need)]
        next_id = max(len(early), len(workers))
        last_print = 0.0
        init_failures = 0
        try:
            while (pending or any(w.task for w in workers)) and not self.stop_reason:
                for w in workers:
                    if w.ready and w.task is None and not w.dead and pending:
                        w.send(pending.popleft())
                try:
                    item: tuple[_Worker | None, dict[str, Any]] | None = self.q.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is not None and item[0] is None and "pool" in item[1]:  # the warm pool failed a fork
                    pmsg = item[1]
                    if not self._pool_said:
                        self._pool_said = True
                        why = "is gone" if pmsg.get("pool") == "gone" else f"did not start a worker ({pmsg.get('why')})"
                        print(f"[openaml] parallel: the warm pool {why}; workers started from now on start here",
                              flush=True)
                    for i, x in enumerate(workers):
                        lost = x.pool is not None and (x.id == pmsg.get("id") or x.id not in x.pool.acked)
                        if lost and not x.ready and not x.dead:
                            x.kill()
                            workers[i] = _Worker(next_id, self)
                            next_id += 1
                    item = None
                if item is not None and item[0] is None:  # the zygote: ready (fork the workers) or not
                    zmsg = item[1]
                    if self.zygote is not None and zmsg.get("zygote") == "ready":
                        self.zygote.ready = True
                    elif self.zygote is not None:
                        if zmsg.get("why"):
                            print(f"[openaml] parallel: workers start as fresh processes: {zmsg['why']}", flush=True)
                        self.zygote.ready = False
                    while len(workers) < need:
                        workers.append(_Worker(next_id, self))
                        next_id += 1
                    item = None
                if item is not None and item[0] is not None and not item[0].dead:
                    w, msg = item[0], item[1]
                    if msg.get("ready"):
                        w.ready = True
                        self._learn(msg.get("imported"))
                        if self.ready_at is None:
                            self.ready_at = time.monotonic() - self.t0
                    elif "init_error" in msg:
                        init_failures += 1
                        write_atomic(self.logs / "user" / "error" / "init_error.txt", msg["init_error"])
                        print(f"[openaml] parallel: init() of worker {w.id} failed:\n{msg['init_error']}", flush=True)
                        self.stop_reason = "init() of the entry script failed (logs/user/error/init_error.txt)"
                    elif "index" in msg:
                        self._result(w, msg, pending)
                    elif msg.get("eof"):
                        code = w.exit_code()
                        if w.task is not None:
                            self._attempt_failed(w.task, f"the worker process exited (code {code}) during run()",
                                                 pending)
                        elif not w.ready:
                            init_failures += 1
                            if w.pool is not None and w.pool.ok:  # the warm path failed: the rest start here
                                w.pool.ok = False
                                print(f"[openaml] parallel: worker {w.id}, forked from the warm pool, ended before "
                                      f"init() did (logs/user/stdout/worker_{w.id}.txt); workers start here",
                                      flush=True)
                        w.dead = True
                        if init_failures >= 3:
                            self.stop_reason = f"workers exited before init() ended (code {code})"
                        elif pending or any(x.task for x in workers):
                            workers[workers.index(w)] = _Worker(next_id, self)
                            next_id += 1
                now = time.monotonic()
                for x in workers:
                    if not x.ready and not x.dead and now - x.born > self.init_timeout and not self.stop_reason:
                        x.kill()
                        why = (f"init() of the entry script did not finish in {self.init_timeout:g} s "
                               "(--first_task_creation_timeout in program_arguments, default 600); its worker was killed")
                        write_atomic(self.logs / "user" / "error" / "init_error.txt", why + "\n")
                        print(f"[openaml] parallel: worker {x.id}: {why}", flush=True)
                        self.stop_reason = why
                for i, x in enumerate(workers):
                    if x.task is not None and not x.dead and now - x.started > self.timeout:
                        task = x.task
                        x.kill()
                        self._attempt_failed(task, f"run() exceeded retry_settings.timeout ({self.timeout:g} s); "
                                             "its worker was killed", pending)
                        workers[i] = _Worker(next_id, self)
                        next_id += 1
                self._sync()
                if now - last_print >= 2.0:
                    last_print = now
                    print(self.progress(total, sum(1 for x in workers if x.task)), flush=True)
        finally:
            for w in workers:
                w.kill()
            if self.zygote is not None:
                self.zygote.close()
            if self.pool is not None:
                self.pool.close()
            self._sync(force=True)
        print(self.progress(total, 0, final=True), flush=True)
        return self._finish(plan)

    def _learn(self, imported: Any) -> None:
        """Keep what the first ready worker imported (with what earlier jobs learned) for the next
        job's zygote; a file that cannot be written costs the next job time only."""
        if self._learned or not isinstance(imported, list):
            return
        self._learned = True
        if self.pool is None:  # for the runner: what a warm pool of this deployment imports (runner._pool)
            try:
                write_atomic(self.state / "imported.json", json.dumps(sorted(str(m) for m in imported)))
            except OSError:
                pass
        try:
            known = json.loads(self.preload_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = []
        merged = sorted(set(known if isinstance(known, list) else []) | {str(m) for m in imported})[:8000]
        if merged == known:
            return
        try:
            self.preload_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.preload_file, json.dumps(merged))
        except OSError:
            pass

    def _result(self, w: _Worker, msg: dict[str, Any], pending: collections.deque[dict[str, Any]]) -> None:
        task = w.task
        w.task = None
        if task is None or task["index"] != msg["index"]:
            return
        if not msg["ok"]:
            self._attempt_failed(task, msg["error"], pending, summary=msg.get("summary"),
                                 retry=bool(msg.get("retry", True)))
            return
        n_in, n_out = int(msg["n_in"]), int(msg["n_out"])
        rec = {"index": task["index"], "status": "done", "n_in": n_in, "n_out": n_out,
               "failed_items": max(0, n_in - n_out) if self.output_file else 0,
               "attempts": self.attempts[task["index"]] + 1, "seconds": round(msg["seconds"], 4)}
        # a file input's run() returns any number of rows per file (Azure: one or more per item); said
        # only when it returned fewer rows than files (those count failed); a table's rows are said both ways
        if self.output_file and (n_out < n_in or (n_out > n_in and self.unit == "rows")):
            print(f"[openaml] parallel: warning: mini-batch {task['index']} ({task['source']}): run() returned "
                  f"{n_out} rows for {n_in} items; all {n_out} rows are kept" +
                  (f", {n_in - n_out} items counted failed" if n_out < n_in else ""), flush=True)
        self._journal(rec)
        self._record(self.done, rec)
        self.rows_this_run += n_in
        self._check_thresholds()

    def _attempt_failed(self, task: dict[str, Any], error: str, pending: collections.deque[dict[str, Any]],
                        summary: str | None = None, retry: bool = True) -> None:
        """One failed attempt: logged, retried up to ``max_retries`` times (``retry=False``: a
        deterministic error, e.g. a ``run()`` result of a type ``append_row`` cannot write, fails the
        mini-batch at once). ``summary``: the error's one line for the log (default: its last line)."""
        idx = task["index"]
        self.attempts[idx] += 1
        n = self.attempts[idx]
        self.errors[idx].append(error)
        with open(self.logs / "user" / "error" / f"mini_batch_{idx:06d}.txt", "a", encoding="utf-8") as fh:
            fh.write(f"mini-batch {idx}: {task['source']}\nattempt {n} of {self.max_retries + 1} failed:\n{error}\n\n")
        last = summary or (error.strip().splitlines()[-1] if error.strip() else error)
        if n <= self.max_retries and retry:
            print(f"[openaml] parallel: mini-batch {idx} attempt {n} failed ({last}); retrying", flush=True)
            pending.appendleft(task)
            return
        print(f"[openaml] parallel: mini-batch {idx} failed after {n} attempt{'s' if n > 1 else ''} ({last}); "
              f"see logs/user/error/mini_batch_{idx:06d}.txt", flush=True)
        rec = {"index": idx, "status": "failed", "n_in": task["n"], "failed_items": task["n"], "attempts": n,
               "error": last, "source": task["source"]}
        self._journal(rec)
        self._record(self.failed, rec)
        self._check_thresholds()

    def _finish(self, plan: list[dict[str, Any]]) -> int:
        lines = [f"mini-batch {i} ({plan[i]['source']}): {r.get('error')}" for i, r in sorted(self.failed.items())]
        write_atomic(self.logs / "job_error.txt", "".join(x + "\n" for x in lines))
        status = "Failed" if self.stop_reason else "Completed"
        summary = (f"{status}: {len(self.done)} of {len(plan)} mini-batches completed, {len(self.failed)} failed, "
                   f"{self.failed_items()} items failed" + (f"; {self.stop_reason}" if self.stop_reason else ""))
        write_atomic(self.logs / "job_result.txt", summary + "\n")
        if self.stop_reason:
            _say_error(f"{self.stop_reason} ({len(self.done)} of {len(plan)} mini-batches completed; "
                       "logs/job_error.txt lists the failed ones)")
            print(f"[openaml] parallel job failed: {self.stop_reason}", flush=True)
            for x in lines[:20]:
                print(f"[openaml]   {x}", flush=True)
            return 1
        if self.output_file is not None:
            self.output_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.output_file.with_name(f".{self.output_file.name}.tmp")
            first = 1
            mapping = ["mini_batch,first_line,lines,source\n"]
            with open(tmp, "wb") as out:
                for i in sorted(self.done):
                    rows = self._rows_file(i)
                    data = rows.read_bytes() if rows.exists() else b""
                    out.write(data)
                    count = data.count(b"\n")
                    mapping.append(f"{i},{first},{count},{json.dumps(plan[i]['source'])}\n")
                    first += count
            os.replace(tmp, self.output_file)
            write_atomic(self.logs / "mini_batch_rows.csv", "".join(mapping))
            print(f"[openaml] parallel: {first - 1} rows written to {self.output_file.name}", flush=True)
        for note in self.plan_notes:  # said again at the end (the server makes them job warnings)
            print(f"[openaml] parallel: {note}", flush=True)
        if self.failed:  # completed under the thresholds (-1: failures ignored), but not all of it
            print(f"[openaml] parallel: {FAILED_WARNING} {len(self.failed)} of {len(plan)} mini-batches failed "
                  f"({self.failed_items()} {self.unit}); error_threshold {self.error_threshold} and "
                  f"mini_batch_error_threshold {self.mb_threshold} let the job complete without them; "
                  "logs/job_error.txt lists them", flush=True)
        print(f"[openaml] parallel: {summary}", flush=True)
        return 0


def _can_fork() -> bool:
    """Workers are forked from a zygote on Linux (``OPENAML_PARALLEL_FORK=0``: fresh processes)."""
    import socket

    return (sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "SOCK_SEQPACKET")
            and os.environ.get("OPENAML_PARALLEL_FORK", "1") != "0")


def _prs_arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _say_error(text: str) -> None:
    """The job's error, for the runner (``$OPENAML_ERROR_FILE``; nothing when run by hand)."""
    path = os.environ.get("OPENAML_ERROR_FILE")
    if path:
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError:
            pass


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--worker":
        return worker_main(int(argv[1]), int(argv[2]), int(argv[3]))
    if argv and argv[0] == "--zygote":
        return zygote_main(int(argv[1]))
    if argv and argv[0] == "--pool":
        return pool_main(argv[1])
    if "--" in argv:
        cut = argv.index("--")
        argv, program = argv[:cut], argv[cut + 1:]
    else:
        program = []
    parser = argparse.ArgumentParser(prog="openaml parallel driver")
    parser.add_argument("--config", required=True)
    parser.add_argument("--input-data", required=True)
    parser.add_argument("--append-row-to")
    args = parser.parse_args(argv)
    cfg = json.loads(base64.b64decode(args.config))
    program = shlex.split(" ".join(shlex.quote(a) for a in program))
    driver = Driver(cfg, Path(args.input_data), args.append_row_to, program)

    def _term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _term)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
