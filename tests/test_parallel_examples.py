"""examples/titanic/parallel: the parallel pipeline node over the Titanic MLTable, CLI and SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "parallel"


def _predictions(ml_client, name: str, out: Path) -> list[str]:  # type: ignore[no-untyped-def]
    ml_client.jobs.download(name, output_name="predictions", download_path=out)
    return next(out.rglob("predictions.txt")).read_text().splitlines()


def _check(lines: list[str]) -> None:
    assert len(lines) == 891  # one per passenger, in the table's order
    assert [int(x.split()[0]) for x in lines] == list(range(1, 892))
    assert {x.split()[1] for x in lines} == {"0", "1"}


@pytest.mark.slow  # trains, then scores with 4 workers: ~40 s here
def test_titanic_parallel_pipeline_yaml(cli, ml_client, tmp_path):
    r = cli("job", "create", "--file", "pipeline.yml", "-o", "json", cwd=EXAMPLE, check=True)
    name = r.json()["name"]
    final = ml_client.jobs.wait(name, timeout=300)
    assert final.status == "Completed", [(c["display_name"], c["status"], c.get("error"))
                                         for c in ml_client.jobs.list_raw(parent_job_name=name)]
    _check(_predictions(ml_client, name, tmp_path / "out"))


@pytest.mark.slow
def test_titanic_parallel_pipeline_dsl(server, ml_client, tmp_path):
    env = {**os.environ, "OPENAML_WORKSPACE": server.url}
    p = subprocess.run([sys.executable, str(EXAMPLE / "pipeline_dsl.py")], env=env, capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    name = p.stdout.splitlines()[0].strip()
    assert ml_client.jobs.get(name).status == "Completed"
    _check(_predictions(ml_client, name, tmp_path / "out"))
