"""What a short CLI command imports: ``job list`` and ``model show`` load only what they print.

Each test runs the CLI's real ``main()`` (``openaml.cli:main``, the console script's target) in a
fresh interpreter against the session server and records ``sys.modules`` as the process leaves
(``main`` ends with ``os._exit``). The assertions are on the set of modules, never on timing
(``bench/cli.py`` measures the time; issue 11 item 8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# ``main()`` in a fresh interpreter; argv[1]: where to write {"code", "modules"}; the rest: the CLI's argv
_PROBE = """\
import json, os, sys
out, sys.argv = sys.argv[1], ["openaml", *sys.argv[2:]]
_exit = os._exit
def record(code):
    with open(out, "w") as f:
        json.dump({"code": code, "modules": sorted(sys.modules)}, f)
    _exit(code)
os._exit = record
from openaml.cli import main
main()
"""

# never on these paths: the server side, fsspec (only for azureml:// URIs in the user's Python),
# PyYAML (no YAML is read or written), the entities of other job kinds
NEVER = ("sqlalchemy", "mlflow", "openaml.services", "openaml.store", "openaml.server", "fsspec", "yaml",
         "openaml.sdk._fsspec", "openaml.entities._sweep", "openaml.entities._pipeline", "openaml.entities._endpoint")
# the wire records are printed as they come: no entity (pydantic model) is built for them
NO_ENTITIES = ("openaml.entities._job", "openaml.entities._base", "openaml.sdk._upload", "tarfile")
RICH = ("rich", "rich.console", "rich.table", "rich.markup")


def _run(server: Any, tmp_path: Path, *argv: str) -> tuple[set[str], str]:
    """(modules loaded when the CLI exited, its stdout) of ``openaml *argv``."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "OPENAML_WORKSPACE": server.url, "COLUMNS": "200"}
    p = subprocess.run([sys.executable, "-c", _PROBE, str(out), *argv], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    got = json.loads(out.read_text())
    assert got["code"] == 0
    return set(got["modules"]), p.stdout


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names of ``names`` that were imported (a package counts when any of its modules was)."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.fixture(scope="module")
def finished_job(ml_client: Any) -> str:
    from openaml import command

    job = ml_client.jobs.create_or_update(command(command="python -c pass", experiment_name="cli-startup",
                                                  display_name="startup probe", tags={"n": 1}))
    ml_client.jobs.stream(job.name, out=open(os.devnull, "w"), raise_on_failure=False)
    return str(job.name)


def test_job_list_table_imports_rich_but_no_entity_fsspec_or_yaml(server: Any, tmp_path: Path,
                                                                  finished_job: str) -> None:
    modules, out = _run(server, tmp_path, "job", "list")
    assert finished_job in out and "startup probe" in out
    assert _loaded(modules, NEVER + NO_ENTITIES) == []
    assert "rich.table" in modules  # the table is rich's


def test_job_list_json_imports_no_rich(server: Any, tmp_path: Path, finished_job: str) -> None:
    modules, out = _run(server, tmp_path, "job", "list", "-o", "json")
    assert finished_job in {j["name"] for j in json.loads(out)}
    assert _loaded(modules, NEVER + RICH) == []


def test_model_show_imports_no_rich_fsspec_or_yaml(server: Any, tmp_path: Path, ml_client: Any) -> None:
    from openaml.entities import Model

    (tmp_path / "m.txt").write_text("0")
    ml_client.models.create_or_update(Model(name="cli-startup-model", version="1", path=str(tmp_path / "m.txt")))
    modules, out = _run(server, tmp_path, "model", "show", "-n", "cli-startup-model", "-v", "1")
    assert json.loads(out)["name"] == "cli-startup-model"
    assert _loaded(modules, NEVER + RICH + ("openaml.datastores",)) == []


def test_job_list_table_shows_what_the_job_entities_hold(cli: Any, ml_client: Any, finished_job: str) -> None:
    """The table reads the wire records directly; each cell is what the SDK's entity holds (``-o tsv``:
    the table's columns, tab-separated), for every job of the listing that has ended."""
    from openaml.cli._job import job_row

    columns = ["name", "display_name", "type", "status", "experiment_name", "compute", "created_at", "duration"]
    by_name = {}
    for line in cli("job", "list", "--all", "-o", "tsv", check=True).stdout.splitlines():
        cells = line.split("\t")
        by_name[cells[0]] = cells
    assert finished_job in by_name
    ended = [j for j in ml_client.jobs.list(list_view_type="All")
             if j.status in ("Completed", "Failed", "Canceled") and j.name in by_name]
    assert finished_job in {j.name for j in ended}
    for job in ended:
        row = job_row(job)
        want = ["" if row.get(c) is None else str(row[c]) for c in columns]
        assert by_name[job.name] == want


def test_job_create_imports_the_command_job_entities_only(server: Any, tmp_path: Path) -> None:
    (tmp_path / "job.yml").write_text("command: python -c pass\nexperiment_name: cli-startup\n")
    modules, out = _run(server, tmp_path, "job", "create", "-f", str(tmp_path / "job.yml"))
    assert json.loads(out)["type"] == "command"
    assert "openaml.entities._job" in modules and "yaml" in modules
    others = ("openaml.entities._assets", "openaml.entities._datastore", "openaml.entities._compute")
    assert _loaded(modules, tuple(n for n in NEVER if n != "yaml") + others + RICH) == []
