"""Files of a runner that cannot see the server's disk (a runner on another machine): its code
snapshot and inputs fetched as tar streams, its declared outputs sent as tar streams, over the
runner routes with the job's token (``server/routes/runner.py``); its ``./outputs``, ``./logs``
and log copies uploaded as the run's artifacts through the MLflow client (the tracking URI and
the job's token: MLflow's artifact proxy).

Whether the server's disk is visible is decided once, from the spec's ``workspace`` (the server's
workspace folder and its id): the folder's ``workspace.json`` must hold that id. A spec without
it (an older server) is taken as visible (the paths in it were always the server's).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from openaml.runner._report import TRANSIENT, Reporter

__all__ = ["sees_server_disk", "Remote"]

ATTEMPTS = 3


def sees_server_disk(spec: dict[str, Any]) -> bool:
    """Whether the server's workspace folder is visible here (same folder, same id)."""
    ws = spec.get("workspace")
    if not ws:
        return True
    try:
        info = json.loads((Path(ws["root"]) / "workspace.json").read_text(encoding="utf-8"))
    except (KeyError, TypeError, OSError, ValueError):
        return False
    # a workspace without an id (the server could not read it): the folder's presence decides
    return info.get("id") == ws.get("id") if ws.get("id") else isinstance(info, dict)


class Remote:
    """The job's files over HTTP (``reporter``: the job's runner routes), staged in ``work``."""

    def __init__(self, reporter: Reporter | None, work: Path) -> None:
        if reporter is None:
            raise RuntimeError("the server's disk is not visible here and this runner has no link to the server")
        self.reporter = reporter
        self.work = work

    def _extract(self, path: str, dest: Path) -> int:
        from openaml.datastores import safe_extract_tar

        for attempt in range(ATTEMPTS):
            try:
                with self.reporter.fetch(path) as resp:
                    return safe_extract_tar(resp, dest)
            except TRANSIENT:
                if attempt == ATTEMPTS - 1:
                    raise
                shutil.rmtree(dest, ignore_errors=True)  # a cut stream: start again clean
                time.sleep(2.0)
        raise AssertionError("unreachable")

    def code(self, wd: Path) -> int:
        """Unpack the job's code snapshot into ``wd``; returns the number of files."""
        stage = self.work / ".code-stage"
        shutil.rmtree(stage, ignore_errors=True)
        count = self._extract("code", stage)
        wd.mkdir(parents=True, exist_ok=True)
        for entry in stage.iterdir():
            os.replace(entry, wd / entry.name)
        stage.rmdir()
        return count

    def input(self, name: str, top: str, dest: Path) -> Path:
        """Download declared input ``name`` into ``dest`` (its tar has one member or folder, ``top``);
        returns ``dest/top`` (an empty folder when the input's folder holds no files)."""
        self._extract(f"inputs/{quote(name, safe='')}", dest)
        target = dest / top
        if not target.exists():
            target.mkdir(parents=True)
        return target

    def output(self, name: str, src: Path, arcname: str) -> str:
        """Send declared output ``name`` (the file or folder ``src``; links skipped) to the server,
        which puts it into its datastore path; returns where it landed."""
        tar_path = self.work / f".output-{name}.tar"
        try:
            with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(src, arcname=arcname, filter=_no_links)
            for attempt in range(ATTEMPTS):
                try:
                    reply = self.reporter.send_file(f"outputs/{quote(name, safe='')}", tar_path)
                    return str(reply["landed"])
                except TRANSIENT:
                    if attempt == ATTEMPTS - 1:
                        raise
                    time.sleep(2.0)
            raise AssertionError("unreachable")
        finally:
            tar_path.unlink(missing_ok=True)


def _no_links(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    # a link in an output could point anywhere (/etc): links are not outputs
    return info if info.isfile() or info.isdir() else None


def log_artifacts(spec: dict[str, Any], folders: dict[str, Path]) -> None:
    """Upload each local folder of ``folders`` (artifact path -> folder, links already left out) as
    the job's run artifacts, through MLflow's client (HTTP to the server's artifact proxy, with the
    job's token as ``MLFLOW_TRACKING_TOKEN``: its scope allows its own run's artifacts)."""
    present = {k: v for k, v in folders.items() if v.is_dir() and any(v.iterdir())}
    if not present:
        return
    from mlflow.tracking import MlflowClient

    if spec.get("token"):
        os.environ["MLFLOW_TRACKING_TOKEN"] = spec["token"]
    client = MlflowClient(tracking_uri=spec["tracking_uri"])
    os.environ["MLFLOW_TRACKING_URI"] = spec["tracking_uri"]  # the artifact proxy resolves against it
    for artifact_path, folder in present.items():
        client.log_artifacts(spec["run_id"], str(folder), artifact_path)
