"""The scheduler and the runner's reports over HTTP (issue 11, item 2): a runner that stops
reporting is a lost job (Failed with the reason, everything it started killed); leaf types."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from openaml import MLClient, command
from tests.conftest import start_server


def _runner(job_name: str) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "openaml.runner" in cmd and job_name in cmd:
            return p
    raise AssertionError(f"no runner process for {job_name}")


def _wait_running(ml: MLClient, name: str) -> None:
    deadline = time.monotonic() + 60
    while ml.jobs.get_raw(name)["status"] != "Running":
        assert time.monotonic() < deadline, ml.jobs.get_raw(name)
        time.sleep(0.1)


def _session(sid: int) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return out


def test_a_runner_that_stops_reporting_fails_the_job_and_is_killed(tmp_path: Path) -> None:
    handle = start_server(tmp_path / "ws", name="heartbeat", env={"OPENAML_HEARTBEAT_TIMEOUT": "3"})
    runner = None
    try:
        with MLClient(workspace=handle.url) as ml:
            job = ml.jobs.create_or_update(command(command="echo up; sleep 300"))
            _wait_running(ml, job.name)
            runner = _runner(job.name)
            assert len(_session(runner.pid)) >= 2  # the runner and the job's command
            runner.send_signal(signal.SIGSTOP)  # alive, but silent (a hung machine, a cut link)
            final = ml.jobs.wait(job.name, timeout=60)
            raw = ml.jobs.get_raw(job.name)
            assert final.status == "Failed"
            assert "stopped reporting" in raw["error"] and "limit is 3 s" in raw["error"], raw["error"]
            deadline = time.monotonic() + 15
            while _session(runner.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _session(runner.pid) == []  # the runner and the job's command were killed
    finally:
        if runner is not None and runner.is_running():
            runner.kill()
        handle.stop()


def test_jobs_keep_running_across_a_server_restart_longer_than_the_heartbeat_timeout(tmp_path: Path) -> None:
    """A server that was down heard no heartbeat: the runner gets a full timeout from its restart."""
    ws = tmp_path / "ws"
    handle = start_server(ws, name="hbrestart", env={"OPENAML_HEARTBEAT_TIMEOUT": "2"})
    try:
        with MLClient(workspace=handle.url) as ml:
            job = ml.jobs.create_or_update(command(command="echo start; sleep 8; echo done"))
            _wait_running(ml, job.name)
        handle.stop(signal.SIGKILL)
        time.sleep(3)  # longer than the timeout, without a server
        handle = start_server(ws, create=False, env={"OPENAML_HEARTBEAT_TIMEOUT": "2"})
        with MLClient(workspace=handle.url) as ml:
            final = ml.jobs.wait(job.name, timeout=60)
            raw = ml.jobs.get_raw(job.name)
            assert final.status == "Completed", (raw["error"], raw["log_tail"])
            assert "start" in raw["log_tail"] and "done" in raw["log_tail"]
    finally:
        handle.stop()
