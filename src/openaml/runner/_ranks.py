"""Running a distributed job's processes (:mod:`openaml.runner._launch` plans them).

Each process runs the job's command (wrapped as a single job's is: its own mount and PID
namespaces where available) in a session of its own (listed in ``runner/rank_sessions`` for the
compute backend's kill), with its
output in ``user_logs/std_log_process_<rank>.txt``; a thread copies their lines, prefixed with
the rank, into the combined ``user_logs/std_log.txt`` that ``job stream`` shows. The first
process that fails (an exit code other than 0, or a signal) fails the job with its rank and exit
code in the job's error ("rank 1 exited with code 7"), and the others are stopped at once
(SIGTERM, SIGKILL after the grace period). A cancel or ``limits.timeout`` stops them all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from openaml.runner._launch import Combiner, Launch, RankProcess, mpi_failed_rank, wait_any

if TYPE_CHECKING:
    from openaml.runner._main import Runner

__all__ = ["run_launch", "RANK_SESSIONS"]

#: file of the runner's folder (``<work dir>/runner/``) listing the sessions of a job's processes
RANK_SESSIONS = "rank_sessions"


def run_launch(runner: Runner, launch: Launch, env: dict[str, str], wd: Path) -> int:
    """Start ``launch``'s processes with ``env`` plus each one's variables, in ``wd``; wait for all of
    them. Returns the job's exit code: 0, or the failing process's (negative: its signal), with
    ``runner.rank_error`` naming it."""
    runner.log_dir.mkdir(parents=True, exist_ok=True)
    for note in launch.notes:
        runner.userlog(f"[openaml] {note}")
    if launch.state_dir is not None:
        shutil.rmtree(launch.state_dir, ignore_errors=True)
        launch.state_dir.mkdir(parents=True)
    if launch.mpi:
        sources = {f"rank {r}": path for r, path in launch.rank_logs.items()}
        sources["mpirun"] = launch.processes[0].log
    else:
        sources = {f"rank {p.rank}": p.log for p in launch.processes}
    runner.syslog(f"distribution {launch.kind}: {len(launch.processes)} process(es)"
                  + (f" (mpirun, {len(launch.rank_logs)} ranks)" if launch.mpi else ""))
    combiner = Combiner(sources, runner.log_path)
    combiner.start()
    started: list[tuple[RankProcess, subprocess.Popen[bytes], int]] = []
    sessions = runner.job_dir / "runner" / RANK_SESSIONS
    try:
        for p in launch.processes:
            if runner.cancel_reason:
                break
            penv = {**env, **p.env}
            with open(p.log, "ab", buffering=0) as log:
                # a session of its own per process, as torchrun starts its workers: where the kernel groups
                # CPU shares by session (autogroup), N ranks get N shares, not one for the whole job
                proc = subprocess.Popen(runner.wrap_command(p.command, penv), cwd=str(wd), env=penv,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            runner.procs.append(proc)
            _record_session(sessions, proc.pid)
            try:
                fd = os.pidfd_open(proc.pid)
            except (AttributeError, OSError):
                fd = -1
            started.append((p, proc, fd))
        if started:
            first = started[0][1]
            runner.update(status="Running", user_pid=first.pid, user_pgid=first.pid, start_time=time.time())
        if runner.cancel_reason:
            runner._kill_user()
        return _wait(runner, launch, started)
    finally:
        for _, _, fd in started:
            if fd >= 0:
                os.close(fd)
        combiner.stop()


def _wait(runner: Runner, launch: Launch, started: list[tuple[RankProcess, subprocess.Popen[bytes], int]]) -> int:
    timeout = runner.spec.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    in_ns = runner.pid_ns or bool(runner.hide_lines)
    failed: tuple[RankProcess, int] | None = None
    running = {proc.pid: (p, proc, fd) for p, proc, fd in started}
    while running:
        for pid, (p, proc, _) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[pid]
            # in a PID namespace the command's shell reports a command killed by signal N as 128+N
            code = -(code - 128) if in_ns and 128 < code <= 128 + 64 else code
            runner.syslog(f"{p.label} (pid {pid}) exited with code {code}")
            if code != 0 and failed is None:
                failed = (p, code)
                if running and not runner.cancel_reason:
                    runner.userlog(f"[openaml] {_describe(p.label, code)}: stopping the other processes")
                runner._kill_user()
        if not running:
            break
        if deadline is not None and time.monotonic() > deadline and runner.cancel_reason is None:
            runner.cancel_reason = f"the job exceeded limits.timeout ({timeout} s) and was canceled"
            runner.userlog(f"\n[openaml] {runner.cancel_reason}")
            runner._kill_user()
        wait_any({pid: fd for pid, (_, _, fd) in running.items()}, 0.2)
    if failed is None:
        return 0
    p, code = failed
    if launch.mpi and launch.state_dir is not None:
        rank = mpi_failed_rank(launch.state_dir)
        if rank is not None:
            runner.rank_error = _describe(f"rank {rank[0]}", rank[1]) + " (mpirun stopped the other ranks)"
            return rank[1]
    runner.rank_error = _describe(p.label, code) + (" (the other processes were stopped)"
                                                     if len(started) > 1 else "")
    return code


def _record_session(path: Path, pid: int) -> None:
    """Note a process's session (``pid start_time``, one a line) for the compute backend, which kills
    these sessions with the runner's (:meth:`openaml.compute._local.LocalBackend.kill`), also when the
    runner itself is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            start = fh.read().rsplit(b")", 1)[1].split()[19].decode()  # field 22: start time in clock ticks
    except (OSError, IndexError):
        start = "0"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{pid} {start}\n")


def _describe(label: str, code: int) -> str:
    return f"{label} was killed by signal {-code}" if code < 0 else f"{label} exited with code {code}"
