"""A job cannot read the workspace's secrets (issue 10: jobs get only their scoped token).

A job runs as the server's OS user, so the runner hides the workspace's secrets in the job's own
mount namespace (openaml.environments._hide): the job below tries to read server.token, secret.key, the
databases, another workspace's secret.key and $OPENAML_HOME/credentials.json and gets nothing,
while its scoped token still logs to its own run.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from openaml import MLClient, command
from tests.security.conftest import launch, launch_without_unshare, needs_namespaces, plant_home_secrets

READER = """
import json, os, sys
import mlflow
seen = {}
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as fh:
            seen[path] = fh.read().decode("latin-1")
    except OSError as exc:
        seen[path] = "error: " + type(exc).__name__
    try:
        with open(path, "ab") as fh:
            fh.write(b"x")
        seen[path + " (write)"] = "written"
    except OSError as exc:
        seen[path + " (write)"] = "error: " + type(exc).__name__
seen["listing"] = sorted(os.listdir(sys.argv[1].rsplit("/", 1)[0]))
mlflow.log_metric("isolated", 1.0)
os.makedirs("outputs", exist_ok=True)
with open("outputs/seen.json", "w") as fh:
    json.dump(seen, fh)
"""


def _seen(workspace: Path, job_name: str) -> dict[str, str]:
    return json.loads((workspace / "jobs" / job_name / "wd" / "outputs" / "seen.json").read_text())


@needs_namespaces
def test_job_cannot_read_workspace_secrets(tmp_path: Path) -> None:
    home, creds, other = plant_home_secrets(tmp_path)
    token = "isolation-token-0123456789abcdef"
    tok_dir = tmp_path / "private"
    tok_dir.mkdir()
    (tok_dir / "tok").write_text(token + "\n")
    ws = tmp_path / "ws"
    tracking_db = tok_dir / "tracking.db"  # an MLflow store outside the workspace is hidden too
    srv = launch(ws, "--token-file", str(tok_dir / "tok"), "--tracking-url", f"sqlite:///{tracking_db}",
                 env={"OPENAML_HOME": str(home)})
    try:
        assert (ws / "server.token").read_text().strip() == token
        client = MLClient(workspace=srv.url, token=token)
        secrets = [ws / "server.token", ws / "secret.key", ws / "openaml.db", creds, other / "secret.key",
                   tok_dir / "tok", tracking_db]
        secrets += [p for p in [*ws.glob("*.db-*"), *tok_dir.glob("*.db-*")]]  # -wal, -shm of the server
        # the server's process as seen through /proc: its mount namespace's root, environment, open files
        server_proc = Path(f"/proc/{srv.proc.pid}")
        secrets += [server_proc / "root" / str(ws / "secret.key").lstrip("/"), server_proc / "environ",
                    server_proc / "cmdline", server_proc / "fd" / "3"]
        assert tracking_db.stat().st_size > 0
        assert (ws / "secret.key").stat().st_size > 0 and (ws / "openaml.db").stat().st_size > 0
        src = tmp_path / "src"
        src.mkdir()
        (src / "reader.py").write_text(textwrap.dedent(READER))
        job = client.jobs.create_or_update(command(
            code=str(src), experiment_name="isolation",
            command="python reader.py " + " ".join(str(f) for f in secrets)))
        final = client.jobs.wait(job.name, timeout=300)
        raw = client.jobs.get_raw(job.name)
        assert final.status == "Completed", (raw["error"], raw["log_tail"])
        seen = _seen(ws, job.name)
        for f in secrets:
            got = seen[str(f)]
            assert got == "" or got.startswith("error:"), (f, got[:80])
            assert seen[f"{f} (write)"].startswith("error:"), f
        # what the job sees of the workspace folder: no secret, no database
        assert set(seen["listing"]) <= {"workspace.json", "server.json", "jobs", "envs", "datastores", ".hidden"}
        # the files themselves are intact, and the job's scoped token logged to its own run
        assert (ws / "server.token").read_text().strip() == token
        assert (tok_dir / "tok").read_text().strip() == token
        assert creds.read_text().startswith("{") and (other / "secret.key").read_text() == "other-workspace-key"
        assert raw["metrics"]["isolated"] == 1.0
        assert not any("NOT hidden" in w for w in raw.get("warnings") or [])
        client.close()
    finally:
        srv.stop()


@needs_namespaces
def test_job_on_tokenless_server_cannot_read_secret_key(sec_server: Any, owner: MLClient, tmp_path: Path) -> None:
    ws = Path(sec_server.path)
    key = ws / "secret.key"
    assert key.stat().st_size > 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "reader.py").write_text(textwrap.dedent(READER))
    job = owner.jobs.create_or_update(command(code=str(src), command=f"python reader.py {key} {ws / 'openaml.db'}",
                                              experiment_name="isolation"))
    final = owner.jobs.wait(job.name, timeout=300)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    seen = _seen(ws, job.name)
    assert seen[str(key)] == "" or seen[str(key)].startswith("error:")
    assert seen[str(ws / "openaml.db")] == "" or seen[str(ws / "openaml.db")].startswith("error:")
    assert raw["metrics"]["isolated"] == 1.0


def test_default_workspaces_folder_is_owner_only(tmp_path: Path) -> None:
    from openaml.workspace import create_workspace

    home = tmp_path / "home"
    layout = create_workspace("private-ws", home=home)
    for folder in (home, home / "workspaces", layout.root):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_first_cli_call_makes_the_home_owner_only(tmp_path: Path) -> None:
    """Regression: the default workspace made by a first CLI call (through its path under
    ``$OPENAML_HOME/workspaces``) left ``$OPENAML_HOME`` and ``workspaces/`` at 0755."""
    from openaml.workspace import discover

    home = tmp_path / "fresh-home"
    target = discover(environ={"OPENAML_HOME": str(home)}, cwd=tmp_path)
    for folder in (home, home / "workspaces", target.path):
        assert folder is not None and folder.stat().st_mode & 0o777 == 0o700, folder


def test_job_is_warned_where_secrets_cannot_be_hidden(tmp_path: Path) -> None:
    """Without ``unshare`` on the PATH of the server (and so of its runners), the job is told."""
    ws, srv = launch_without_unshare(tmp_path)
    try:
        client = MLClient(workspace=srv.url)
        job = client.jobs.create_or_update(command(command="echo ran", experiment_name="isolation"))
        final = client.jobs.wait(job.name, timeout=300)
        raw = client.jobs.get_raw(job.name)
        assert final.status == "Completed", (raw["error"], raw["log_tail"])
        assert any("secrets are NOT hidden" in w for w in raw["warnings"]), raw["warnings"]
        log = (ws / "jobs" / job.name / "user_logs" / "std_log.txt").read_text()
        assert "[openaml] warning: the workspace's secrets are NOT hidden from this job" in log
        client.close()
    finally:
        srv.stop()


@needs_namespaces
def test_model_input_still_mounts_when_artifacts_are_hidden(sec_server: Any, owner: MLClient, tmp_path: Path) -> None:
    """A model input lives in mlartifacts/, which the job cannot see: its read-only mount is made first."""
    from openaml import Input
    from openaml.entities import Model

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "weights.txt").write_text("w=42")
    name = f"iso-{os.getpid()}"
    owner.models.create_or_update(Model(name=name, version="1", path=str(folder), type="custom_model"))
    job = owner.jobs.create_or_update(command(
        command="cat ${{inputs.m}}/weights.txt && ls " + str(Path(sec_server.path) / "mlartifacts"),
        inputs={"m": Input(type="custom_model", path=f"azureml:{name}:1")}, experiment_name="isolation"))
    final = owner.jobs.wait(job.name, timeout=300)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Failed", (raw["error"], raw["log_tail"])  # ls: no mlartifacts/ for the job
    assert "w=42" in "\n".join(raw["log_tail"])
    assert "mlartifacts" in "\n".join(raw["log_tail"])


BREAKOUT = r"""
import json, os, subprocess, sys, sysconfig
ws, server_pid = sys.argv[1], sys.argv[2]
seen = {}
for target in (ws, "/proc"):  # a root job unmounting what hides the secrets, or its own /proc
    r = subprocess.run(["umount", "-l", target], capture_output=True, text=True)
    seen["umount " + target] = r.returncode
seen["secret.key visible"] = os.path.exists(os.path.join(ws, "secret.key"))
seen["server in /proc"] = os.path.exists(f"/proc/{server_pid}")
r = subprocess.run(["mount", "-t", "tmpfs", "x", "outputs"], capture_output=True, text=True)
seen["mount"] = r.returncode
caps = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapEff")]
seen["CapEff"] = caps[0]
# what the runner, the server and the next job run: the server's virtualenv, its sys.path (an editable
# source folder), its base interpreter, and this job's own shared environment and interpreter
own = (os.environ["VIRTUAL_ENV"], os.getcwd())  # the job's own layer and working directory: writable
mine = [p for p in sys.path if p and os.path.isdir(p) and not p.startswith(own)]
for d in json.loads(sys.argv[3]) + mine + [sysconfig.get_paths()["stdlib"]]:
    try:
        with open(os.path.join(d, "zz_planted.pth"), "w") as fh:
            fh.write("import os\n")
        seen["write " + d] = "written"
    except OSError as exc:
        seen["write " + d] = "error: " + type(exc).__name__
os.makedirs("outputs", exist_ok=True)
with open("outputs/seen.json", "w") as fh:
    json.dump(seen, fh)
"""


@needs_namespaces
@pytest.mark.parametrize("environment", [None, "azureml:AzureML-sklearn-1.5@latest"], ids=["default", "curated"])
def test_root_job_cannot_unmount_its_view_nor_write_what_others_run(sec_server: Any, owner: MLClient, tmp_path: Path,
                                                                   environment: str | None) -> None:
    """Review M1-M3: a job run as root could `umount -l` the workspace's cover (and read secret.key,
    openaml.db, other jobs) or its own /proc (and see the server), and could write a .pth into the
    server's virtualenv or openaml's editable source folder, which the next runner and the CLI then
    ran. The command now runs without sys_admin (Docker's default capabilities) and every folder the
    runner's interpreter imports from is read-only to it."""
    import sys
    import sysconfig

    ws = Path(sec_server.path)
    targets = sorted({sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"],
                      str(Path(__import__("openaml").__file__).parent)})
    src = tmp_path / "src"
    src.mkdir()
    (src / "breakout.py").write_text(BREAKOUT)
    args = f"{ws} {sec_server.proc.pid} '{json.dumps(targets)}'"
    job = owner.jobs.create_or_update(command(code=str(src), command=f"python breakout.py {args}",
                                              environment=environment, experiment_name="breakout"))
    final = owner.jobs.wait(job.name, timeout=600)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    seen = _seen(ws, job.name)
    try:
        assert seen[f"umount {ws}"] != 0 and seen["umount /proc"] != 0 and seen["mount"] != 0, seen
        assert seen["secret.key visible"] is False and seen["server in /proc"] is False, seen
        assert int(seen["CapEff"], 16) & (1 << 21) == 0, seen  # CAP_SYS_ADMIN (21) is gone
        written = {k: v for k, v in seen.items() if k.startswith("write ") and v == "written"}
        assert written == {}, written
    finally:
        for d in [*targets, *(k[len("write "):] for k in seen if k.startswith("write "))]:
            Path(d, "zz_planted.pth").unlink(missing_ok=True)
