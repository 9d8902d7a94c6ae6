"""Parallel jobs (``type: parallel``) end to end: real server, CLI, SDK, the engine's real worker
processes (docs/guide/batch.md, engine rules)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from openaml import Input, Output
from openaml.errors import ValidationError
from openaml.parallel import RunFunction, parallel_run_function


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _files(folder: Path, n: int, rows: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        lines = ["a,b"] + [f"{i},{j}" for j in range(rows)]
        (folder / f"f{i:03d}.csv").write_text("\n".join(lines) + "\n")
    return folder


SCORE = """
    import os, sys
    import pandas as pd
    def init():
        global PREFIX
        PREFIX = "p"
        print("init in", os.getpid(), flush=True)
    def run(mini_batch):
        out = []
        for f in mini_batch:
            df = pd.read_csv(f)
            out.append(f"{os.path.basename(f)} {len(df)} {int(df['b'].sum())}")
        return out
    """


def _job_yml(tmp_path: Path, body: str = "", *, script: str = SCORE, files: int = 7) -> Path:
    _write(tmp_path / "src" / "score.py", script)
    _files(tmp_path / "data", files)
    return _write(tmp_path / "job.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/parallelJob.schema.json
        type: parallel
        display_name: parallel test
        experiment_name: parallel-tests
        compute: azureml:local
        inputs:
          job_data:
            type: uri_folder
            path: ./data
        outputs:
          job_output:
            type: uri_folder
        input_data: ${{inputs.job_data}}
        mini_batch_size: "2"
        resources:
          instance_count: 1
        max_concurrency_per_instance: 2
        error_threshold: -1
        mini_batch_error_threshold: -1
        logging_level: DEBUG
        retry_settings:
          max_retries: 2
          timeout: 60
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          program_arguments: --allowed_failed_percent 5 --progress_update_timeout 600 --task_overhead_timeout 120
          append_row_to: ${{outputs.job_output}}
        """ + textwrap.dedent(body))


def _submit(cli, yml: Path, *args: str) -> str:
    r = cli("job", "create", "-f", str(yml), "-o", "json", *args, check=True)
    name = str(r.json()["name"])
    cli("job", "stream", "--name", name)
    return name


def _download(cli, name: str, out: Path, output: str = "job_output") -> Path:
    cli("job", "download", "--name", name, "--output-name", output, "--download-path", str(out), check=True)
    found = list(out.rglob("parallel_run_step.txt"))
    assert found, list(out.rglob("*"))
    return found[0]


def test_folder_job_yaml_cli_output_order_logs_and_progress(cli, ml_client, tmp_path):
    yml = _job_yml(tmp_path)
    name = _submit(cli, yml)
    job = ml_client.jobs.get(name)
    assert job.status == "Completed", cli("job", "stream", "--name", name).stdout[-3000:]
    assert job.type == "parallel" and job.mini_batch_size == "2" and job.task.entry_script == "score.py"
    lines = _download(cli, name, tmp_path / "out").read_text().splitlines()
    # one line per file, in mini-batch order (files sorted by name)
    assert lines == [f"f{i:03d}.csv 3 3" for i in range(7)]
    log = cli("job", "stream", "--name", name).stdout
    assert "mini-batches 4/4 done, 0 failed" in log
    assert "files/s" in log and "files 7 done, 0 failed" in log
    arts = tmp_path / "arts"
    cli("job", "download", "--name", name, "--all", "--download-path", str(arts), check=True)
    overview = next(arts.rglob("job_progress_overview.txt")).read_text()
    assert "completed_mini_batches: 4" in overview and "failed_mini_batches: 0" in overview
    rowmap = next(arts.rglob("mini_batch_rows.csv")).read_text().splitlines()
    assert rowmap[0] == "mini_batch,first_line,lines,source"
    assert rowmap[1] == '0,1,2,"f000.csv;f001.csv"' and rowmap[4] == '3,7,1,"f006.csv"'
    assert "Completed" in next(arts.rglob("job_result.txt")).read_text()


MARKED = """
    import os, sys, time, signal, argparse
    from pathlib import Path
    p = argparse.ArgumentParser(); p.add_argument("--marks"); p.add_argument("--mode", default="ok")
    ARGS, _ = p.parse_known_args()
    MARKS = Path(ARGS.marks)
    def init():
        (MARKS / f"init.{os.getpid()}").write_text("x")
    def run(mini_batch):
        names = [os.path.basename(f) for f in mini_batch]
        key = "_".join(names)
        n = len(list(MARKS.glob(f"run.{key}.*")))
        (MARKS / f"run.{key}.{n}").write_text("x")
        if ARGS.mode == "raise" and "f003.csv" in names:
            raise ValueError(f"cannot score {names}")
        if ARGS.mode == "kill" and "f003.csv" in names and n == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if ARGS.mode == "hang" and "f003.csv" in names and n == 0:
            time.sleep(120)
        if ARGS.mode == "slow":
            time.sleep(0.4)
        if ARGS.mode == "fewer" and "f003.csv" in names:
            return [n + "!" for n in names[:-1]]
        return names
    """


def _runs(marks: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in marks.glob("run.*"):
        key = p.name[4:].rsplit(".", 1)[0]
        out[key] = out.get(key, 0) + 1
    return out


def _marked_job(tmp_path: Path, mode: str, *, files: int = 7, mbs: int = 1, extra: str = "",
                retries: int = 2, timeout: int = 60, conc: int = 2) -> tuple[Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    yml = _job_yml(tmp_path, script=MARKED, files=files)
    text = yml.read_text()
    text = text.replace('mini_batch_size: "2"', f"mini_batch_size: {mbs}")
    # (Azure's --allowed_failed_percent is applied: 100 lets the thresholds under test decide)
    text = text.replace("program_arguments: --allowed_failed_percent 5",
                        f"program_arguments: --marks {marks} --mode {mode} --allowed_failed_percent 100")
    text = text.replace("max_retries: 2\n  timeout: 60", f"max_retries: {retries}\n  timeout: {timeout}")
    text = text.replace("max_concurrency_per_instance: 2", f"max_concurrency_per_instance: {conc}")
    for line in extra.strip().splitlines():
        key = line.split(":", 1)[0]
        text = "\n".join(x for x in text.splitlines() if not x.startswith(key + ":")) + "\n" + line + "\n"
    yml.write_text(text)
    return yml, marks


def test_sdk_parallel_run_function_init_once_per_worker(ml_client, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    _write(tmp_path / "src" / "score.py", MARKED)
    data = _files(tmp_path / "data", 6)
    job = parallel_run_function(
        name=None, display_name="sdk parallel", experiment_name="parallel-tests",
        inputs={"data": Input(type="uri_folder", path=str(data))},
        outputs={"scored": Output(type="uri_folder")},
        input_data="${{inputs.data}}", instance_count=2, max_concurrency_per_instance=1, mini_batch_size=1,
        retry_settings={"max_retries": 1, "timeout": 30}, error_threshold=-1, logging_level="INFO",
        task=RunFunction(code=str(tmp_path / "src"), entry_script="score.py",
                         program_arguments=f"--marks {marks}", append_row_to="${{outputs.scored}}"),
        compute="local")
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=120)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)["log_tail"]
    # 2 instances x 1 = 2 workers, init() once each (a worker still starting when the last mini-batch
    # ended is stopped before its init() on a loaded machine)
    assert 1 <= len(list(marks.glob("init.*"))) <= 2
    assert "2 workers (instance_count x max_concurrency_per_instance)" in "".join(
        ml_client.jobs.get_raw(created.name)["log_tail"])
    assert _runs(marks) == {f"f{i:03d}.csv": 1 for i in range(6)}
    out = tmp_path / "out"
    ml_client.jobs.download(created.name, output_name="scored", download_path=out)
    assert next(out.rglob("parallel_run_step.txt")).read_text().splitlines() == [f"f{i:03d}.csv" for i in range(6)]


def test_run_raising_is_retried_then_counted_and_job_completes_under_thresholds(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "raise", extra="error_threshold: 1\nmini_batch_error_threshold: 1")
    name = _submit(cli, yml)
    raw = ml_client.jobs.get_raw(name)
    assert raw["status"] == "Completed", raw["log_tail"]
    assert _runs(marks)["f003.csv"] == 3  # the first try and max_retries=2 more
    lines = _download(cli, name, tmp_path / "out").read_text().splitlines()
    assert lines == [f"f{i:03d}.csv" for i in range(7) if i != 3]
    arts = tmp_path / "arts"
    cli("job", "download", "--name", name, "--all", "--download-path", str(arts), check=True)
    err = next(arts.rglob("mini_batch_000003.txt")).read_text()
    assert "f003.csv" in err and "Traceback" in err and "ValueError: cannot score" in err and "attempt 3 of 3" in err
    assert "f003.csv" in next(arts.rglob("job_error.txt")).read_text()
    log = cli("job", "stream", "--name", name).stdout
    assert "mini-batch 3 attempt 1 failed (ValueError: cannot score ['f003.csv']); retrying" in log


def test_failed_items_over_error_threshold_fail_the_job(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "raise", retries=0, conc=1, extra="error_threshold: 0")
    name = _submit(cli, yml)
    raw = ml_client.jobs.get_raw(name)
    assert raw["status"] == "Failed"
    # the job's error says why (review: it was "the command exited with code 1"; the engine's
    # reason reaches the runner through $OPENAML_ERROR_FILE)
    assert raw["error"].startswith("1 items failed, more than error_threshold 0 ("), raw["error"]
    log = cli("job", "stream", "--name", name).stdout
    assert "parallel job failed: 1 items failed, more than error_threshold 0" in log
    assert "f003.csv" in log
    assert "f006.csv" not in _runs(marks)  # stopped at once: later mini-batches not run (one worker)


def test_killed_worker_reruns_its_mini_batch_once_rows_once(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "kill", mbs=2)
    name = _submit(cli, yml)
    assert ml_client.jobs.get_raw(name)["status"] == "Completed", cli("job", "stream", "--name", name).stdout
    runs = _runs(marks)
    assert runs["f002.csv_f003.csv"] == 2 and all(v == 1 for k, v in runs.items() if "f003" not in k)
    lines = _download(cli, name, tmp_path / "out").read_text().splitlines()
    assert lines == [f"f{i:03d}.csv" for i in range(7)]
    assert "worker process exited (code -9) during run()" in cli("job", "stream", "--name", name).stdout


def test_run_over_timeout_is_killed_and_retried(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "hang", timeout=3)
    name = _submit(cli, yml)
    assert ml_client.jobs.get_raw(name)["status"] == "Completed"
    assert _runs(marks)["f003.csv"] == 2
    assert "run() exceeded retry_settings.timeout (3 s); its worker was killed" in cli("job", "stream", "--name", name).stdout
    assert len(_download(cli, name, tmp_path / "out").read_text().splitlines()) == 7


def test_fewer_rows_than_items_is_warned_and_counted_failed(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "fewer", mbs=2, extra="error_threshold: 0")
    name = _submit(cli, yml)
    assert ml_client.jobs.get_raw(name)["status"] == "Failed"
    log = cli("job", "stream", "--name", name).stdout
    assert "warning: mini-batch 1 (f002.csv;f003.csv): run() returned 1 rows for 2 items" in log
    assert "1 items failed, more than error_threshold 0" in log


NO_RUN = """
    def init():
        pass
    def score(mini_batch):
        return mini_batch
    """


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"mini_batch_size": "0"}, "mini_batch_size", "at least 1"),
    ({"mini_batch_size": "ten"}, "mini_batch_size", "not a mini-batch size"),
    ({"mini_batch_size": "10kb"}, "mini_batch_size", "for a uri_folder give a file count"),
    ({"input_data": "${{inputs.nothere}}"}, "input_data", "does not declare"),
    ({"input_data": "./data"}, "input_data", "must be ${{inputs.<name>}}"),
    ({"inputs.job_data.path": "./missing"}, "inputs.job_data.path", "does not exist"),
    ({"inputs.job_data.path": "./empty"}, "input_data", "empty folder"),
    ({"task.type": "function"}, "task.type", "the only one is run_function"),
    ({"task.entry_script": "nope.py"}, "task.entry_script", "does not exist"),
    ({"script": NO_RUN}, "task.entry_script", "defines no run() function"),
    ({"task.append_row_to": "${{outputs.other}}"}, "task.append_row_to", "must be ${{outputs.<name>}}"),
])
def test_bad_input_refused_before_anything_runs(cli, ml_client, tmp_path, change, field, words):
    import yaml

    yml = _job_yml(tmp_path, script=change.get("script", SCORE))
    (tmp_path / "empty").mkdir()
    spec = yaml.safe_load(yml.read_text())
    for key, value in change.items():
        if key == "script":
            continue
        node = spec
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    yml.write_text(yaml.safe_dump(spec))
    before = len(ml_client.jobs.list_raw(include_archived=True))
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert field in text and words in text, text
    assert len(ml_client.jobs.list_raw(include_archived=True)) == before


def test_sdk_bad_mini_batch_size_names_the_field():
    with pytest.raises(Exception) as info:
        parallel_run_function(input_data="${{inputs.x}}", mini_batch_size=0,
                              task=RunFunction(entry_script="s.py"))
    assert "mini_batch_size" in str(info.value)


def test_job_show_keeps_azure_shape(cli, ml_client, tmp_path):
    name = _submit(cli, _job_yml(tmp_path))
    d = cli("job", "show", "--name", name, "-o", "json", check=True).json()
    assert d["type"] == "parallel" and d["input_data"] == "${{inputs.job_data}}"
    assert d["task"]["type"] == "run_function" and d["task"]["append_row_to"] == "${{outputs.job_output}}"
    assert d["retry_settings"] == {"max_retries": 2, "timeout": 60} and d["max_concurrency_per_instance"] == 2
    assert "command" not in d
    with pytest.raises(ValidationError):
        ml_client.jobs.create_or_update(parallel_run_function(
            input_data="${{inputs.x}}", inputs={"x": Input(type="uri_folder", path=str(tmp_path / "missing"))},
            task=RunFunction(code=str(tmp_path / "src"), entry_script="score.py")))


def test_cancel_stops_driver_and_workers_no_process_left(cli, ml_client, tmp_path):
    import time

    import psutil

    yml, marks = _marked_job(tmp_path, "slow", files=40)
    name = cli("job", "create", "-f", str(yml), "-o", "json", check=True).json()["name"]
    deadline = time.monotonic() + 120
    while not list(marks.glob("run.*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(marks.glob("run.*")), "no mini-batch started"

    def engine() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if "_openaml_parallel_driver.py" in cmd and name in cmd + _cwd(p):
                found.append(p)
        return found

    assert engine(), "no driver/worker process found"
    cli("job", "cancel", "--name", name, check=True)
    final = ml_client.jobs.wait(name, timeout=120)
    assert final.status == "Canceled"
    deadline = time.monotonic() + 30
    while engine() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine() == []
    assert len(_runs(marks)) < 40  # stopped, not run to the end


def _cwd(p) -> str:  # type: ignore[no-untyped-def]
    try:
        return str(p.cwd())
    except Exception:  # noqa: BLE001 - gone or not ours
        return ""


def test_failed_mini_batches_over_mini_batch_error_threshold_fail_the_job(cli, ml_client, tmp_path):
    yml, marks = _marked_job(tmp_path, "raise", retries=1, conc=1, extra="mini_batch_error_threshold: 0")
    name = _submit(cli, yml)
    assert ml_client.jobs.get_raw(name)["status"] == "Failed"
    log = cli("job", "stream", "--name", name).stdout
    assert "parallel job failed: 1 mini-batches failed, more than mini_batch_error_threshold 0" in log
    assert _runs(marks)["f003.csv"] == 2
