"""The workspace's files on an object-store default datastore (issue 12 item 4), on S3 (moto) and
Azure Blob (Azurite), through one real server: what a job leaves (code snapshot, log, MLflow
artifacts) is copied under ``openaml-workspace/`` of the datastore, and a server whose folder lacks
them (another host) reads them from there. The two-server topology itself, with PostgreSQL:
tests/contracts/test_multi_server_workspace.py."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerHandle, start_server
from tests.test_object_store_datastores import _entity, _raw_files, _store


@pytest.fixture()
def ws_server(tmp_path: Path) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path / "ws", name=f"wsfiles-{uuid.uuid4().hex[:8]}")
    yield handle
    handle.stop()


@pytest.mark.parametrize("backend", ["s3", "azure_blob"])
def test_job_files_go_to_the_default_datastore_and_come_back_from_it(backend: str, request: pytest.FixtureRequest,
                                                                      ws_server: ServerHandle, tmp_path: Path) -> None:
    from openaml import MLClient, command

    store = _store(request, backend)
    definition = store.definition("objstore")
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text("import os\nprint('hello-log')\nos.makedirs('outputs', exist_ok=True)\n"
                                   "open('outputs/metrics.txt', 'w').write('accuracy=0.9\\n')\n")
    ws = ws_server.path
    with MLClient(workspace=ws_server.url) as ml:
        ml.datastores.create_or_update(_entity({**definition, "is_default": True}))
        job = ml.jobs.create_or_update(command(code=str(code), command="python train.py", experiment_name="wsfiles"))
        assert ml.jobs.wait(job.name, timeout=240).status == "Completed"

        raw = _raw_files(store, definition, "openaml-workspace/")
        log_key = f"openaml-workspace/jobs/{job.name}/user_logs/std_log.txt"
        assert b"hello-log" in raw[log_key]
        codes = [k for k in raw if k.startswith("openaml-workspace/code/") and k.endswith("/train.py")]
        assert len(codes) == 1 and raw[codes[0]] == (code / "train.py").read_bytes()
        metrics = [k for k in raw if k.startswith("openaml-workspace/mlartifacts/") and k.endswith("/outputs/metrics.txt")]
        assert len(metrics) == 1 and raw[metrics[0]] == b"accuracy=0.9\n"

        # this folder loses them (as another host's folder never had them): they come back from the datastore
        shutil.rmtree(ws / "jobs" / job.name / "user_logs")
        shutil.rmtree(ws / Path(codes[0]).parent.relative_to("openaml-workspace"))
        run_artifacts = ws / Path(metrics[0]).parent.parent.relative_to("openaml-workspace")
        shutil.rmtree(run_artifacts)
        r = httpx.get(f"{ws_server.url}/api/v1/jobs/{job.name}/logs", params={"offset": 0}, timeout=60)
        assert "hello-log" in r.json()["data"] and r.json()["terminal"], r.text
        ml.jobs.download(job.name, download_path=tmp_path / "dl")
        assert [p.read_text() for p in (tmp_path / "dl").rglob("metrics.txt")] == ["accuracy=0.9\n"]
        again = ml.jobs.create_or_update(command(code=str(code), command="python train.py", experiment_name="wsfiles"))
        assert ml.jobs.wait(again.name, timeout=240).status == "Completed"
        # the default goes back to the workspace's folder: nothing more is copied
        ml.datastores.create_or_update(_entity({**definition, "is_default": False}))
        third = ml.jobs.create_or_update(command(command="echo local", experiment_name="wsfiles"))
        assert ml.jobs.wait(third.name, timeout=240).status == "Completed"
        assert not [k for k in _raw_files(store, definition, "openaml-workspace/jobs/") if third.name in k]
