"""The parallel engine's journal: a driver killed and started again in the same folder, or a server
restarted mid-job, does not rerun completed mini-batches and writes each row exactly once."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openaml import Input, MLClient, Output
from openaml.parallel import RunFunction, parallel_run_function
from tests.test_parallel import MARKED, _files, _runs, _write

DRIVER = Path(__file__).resolve().parents[1] / "src" / "openaml" / "parallel" / "_driver.py"


def _wait_journal(path: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines")


def test_driver_killed_and_started_again_skips_completed_mini_batches(tmp_path):
    wd = tmp_path / "wd"
    _write(wd / "score.py", MARKED)
    data = _files(tmp_path / "data", 10)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    cfg = {"entry_script": "score.py", "mini_batch_size": 1, "max_concurrency": 1, "instance_count": 1,
           "max_retries": 1, "timeout": 60}
    argv = [sys.executable, str(DRIVER), "--config", base64.b64encode(json.dumps(cfg).encode()).decode(),
            "--input-data", str(data), "--append-row-to", str(out), "--", "--marks", str(marks), "--mode", "slow"]
    first = subprocess.Popen(argv, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    journal = wd / ".openaml_parallel" / "journal.jsonl"
    _wait_journal(journal, 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = [json.loads(x)["index"] for x in journal.read_text().splitlines()]
    second = subprocess.run(argv, cwd=wd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"resuming: {len(done_before)} mini-batches done" in second.stdout
    runs = _runs(marks)
    for i in done_before:
        assert runs[f"f{i:03d}.csv"] == 1
    assert (out / "parallel_run_step.txt").read_text().splitlines() == [f"f{i:03d}.csv" for i in range(10)]


@pytest.mark.slow  # two server starts: ~40 s on the shared CI machine
def test_server_restart_mid_job_no_rerun_rows_once(tmp_path):
    from tests.conftest import start_server

    ws = tmp_path / "ws"
    handle = start_server(ws, name="prestart")
    marks = tmp_path / "marks"
    marks.mkdir()
    _write(tmp_path / "src" / "score.py", MARKED)
    data = _files(tmp_path / "data", 12)
    try:
        with MLClient(workspace=handle.url) as ml:
            job = ml.jobs.create_or_update(parallel_run_function(
                inputs={"data": Input(type="uri_folder", path=str(data))}, outputs={"out": Output(type="uri_folder")},
                input_data="${{inputs.data}}", mini_batch_size=1, max_concurrency_per_instance=1,
                task=RunFunction(code=str(tmp_path / "src"), entry_script="score.py",
                                 program_arguments=f"--marks {marks} --mode slow", append_row_to="${{outputs.out}}")))
        _wait_journal(ws / "jobs" / job.name / "wd" / ".openaml_parallel" / "journal.jsonl", 3)
        handle.stop(signal.SIGKILL)
        time.sleep(1.0)
        handle = start_server(ws, create=False)
        with MLClient(workspace=handle.url) as ml:
            final = ml.jobs.wait(job.name, timeout=120)
            assert final.status == "Completed", ml.jobs.get_raw(job.name)["log_tail"]
            ml.jobs.download(job.name, output_name="out", download_path=tmp_path / "dl")
        assert _runs(marks) == {f"f{i:03d}.csv": 1 for i in range(12)}
        lines = next((tmp_path / "dl").rglob("parallel_run_step.txt")).read_text().splitlines()
        assert lines == [f"f{i:03d}.csv" for i in range(12)]
    finally:
        handle.stop()


def test_driver_is_python_37_syntax_and_standard_library_only():
    """The driver runs on the job's Python (curated environments go back to 3.7), before anything of
    openaml is importable there."""
    import ast

    files = [DRIVER, *sorted((DRIVER.parent / "_openaml_parallel").glob("*.py"))]
    assert len(files) > 3  # the entry script and the engine's package shipped beside it
    for f in files:
        tree = ast.parse(f.read_text(), feature_version=(3, 7))
        nodes = list(ast.walk(tree))
        top = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
        top |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert top <= set(sys.stdlib_module_names) | {"__future__", "_openaml_parallel", "pandas", "pyarrow"}, (f, top)
