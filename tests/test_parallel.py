"""Parallel jobs (``type: parallel``) end to end: real server, CLI, SDK, the engine's real worker
processes (docs/guide/batch.md, engine rules)."""

from __future__ import annotations

import json
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
    assert "items/s" in log
    arts = tmp_path / "arts"
    cli("job", "download", "--name", name, "--all", "--download-path", str(arts), check=True)
    overview = next(arts.rglob("job_progress_overview.txt")).read_text()
    assert "completed_mini_batches: 4" in overview and "failed_mini_batches: 0" in overview
    rowmap = next(arts.rglob("mini_batch_rows.csv")).read_text().splitlines()
    assert rowmap[0] == "mini_batch,first_line,lines,source"
    assert rowmap[1] == '0,1,2,"f000.csv;f001.csv"' and rowmap[4] == '3,7,1,"f006.csv"'
    assert "Completed" in next(arts.rglob("job_result.txt")).read_text()
