"""Job start: the parallel engine forks its workers from a zygote that imported the entry script and
the modules earlier jobs' ``init()`` imported (issue 13, job start). The engine is run by hand here,
as the runner runs it; no server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

DRIVER = Path(__file__).resolve().parents[1] / "src" / "openaml" / "parallel" / "_driver.py"

SCRIPT = """
    import os, sys
    MARKS = os.environ["MARKS"]
    with open(os.path.join(MARKS, f"import.{os.getpid()}"), "w") as fh:
        fh.write("x")

    def init():
        preloaded = "fractions" in sys.modules
        import fractions  # noqa: F401 - what init() imports is learned for the next job
        import helper  # noqa: F401 - the job's own module: never preloaded
        with open(os.path.join(MARKS, f"init.{os.getpid()}"), "w") as fh:
            fh.write("preloaded" if preloaded else "cold")

    def run(mini_batch):
        import glob, time
        deadline = time.monotonic() + 60  # every worker gets to init() before the job ends
        while len(glob.glob(os.path.join(MARKS, "init.*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        return [os.path.basename(f) for f in mini_batch]
    """


def _run(tmp_path: Path, tag: str, fork: str, script: str = SCRIPT, env_extra: dict[str, str] | None = None,
         pass_fds: tuple[int, ...] = ()) -> tuple[list[Path], list[Path], str]:
    wd = tmp_path / f"wd-{tag}"
    wd.mkdir()
    (wd / "score.py").write_text(textwrap.dedent(script).lstrip())
    (wd / "helper.py").write_text("VALUE = 1\n")
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        for i in range(6):
            (data / f"f{i}.txt").write_text("x\n")
    marks = tmp_path / f"marks-{tag}"
    marks.mkdir()
    cfg = {"entry_script": "score.py", "mini_batch_size": 1, "max_concurrency": 3, "instance_count": 1,
           "max_retries": 0, "timeout": 60}
    env = {**os.environ, "MARKS": str(marks), "OPENAML_PARALLEL_FORK": fork,
           "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env_extra or {})}
    p = subprocess.run([sys.executable, str(DRIVER), "--config", base64.b64encode(json.dumps(cfg).encode()).decode(),
                        "--input-data", str(data), "--append-row-to", str(wd / "out")], cwd=wd, env=env,
                       capture_output=True, text=True, timeout=180, pass_fds=pass_fds)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (wd / "out" / "parallel_run_step.txt").read_text().splitlines() == [f"f{i}.txt" for i in range(6)]
    return sorted(marks.glob("import.*")), sorted(marks.glob("init.*")), p.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_workers_fork_from_a_zygote_module_code_once_init_per_worker_learned_preload(tmp_path: Path) -> None:
    imports, inits, _ = _run(tmp_path, "first", "1")
    assert len(imports) == 1, imports  # the entry script imported once, by the zygote
    assert len(inits) == 3 and {p.read_text() for p in inits} == {"cold"}  # init() once per worker
    learned = list((tmp_path / "cache" / "openaml" / "parallel-preload").glob("*.json"))
    assert len(learned) == 1 and "fractions" in json.loads(learned[0].read_text())
    assert "helper" not in json.loads(learned[0].read_text())
    # the next job of the same script: the zygote imported what init() imported before the fork
    imports, inits, _ = _run(tmp_path, "second", "1")
    assert len(imports) == 1 and len(inits) == 3 and {p.read_text() for p in inits} == {"preloaded"}
    # OPENAML_PARALLEL_FORK=0: fresh processes, each importing the entry script itself
    imports, inits, _ = _run(tmp_path, "fresh", "0")
    assert len(imports) == 3 and len(inits) == 3 and {p.read_text() for p in inits} == {"cold"}


def test_fork_unsafe_module_gives_fresh_workers(tmp_path: Path) -> None:
    """An entry script importing a fork-unsafe library (a stand-in module named ``grpc`` here) gets
    fresh worker processes, and the log says why."""
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "grpc.py").write_text("")
    script = SCRIPT.replace("import os, sys", "import os, sys\n    sys.path.insert(0, os.environ['STUB'])\n"
                                              "    import grpc  # noqa: F401")
    imports, inits, log = _run(tmp_path, "unsafe", "1", script, {"STUB": str(tmp_path / "stub")})
    assert "workers start as fresh processes: grpc (fork-unsafe) imported" in log, log
    assert len(inits) == 3 and len(imports) == 4  # the zygote's import, then one per fresh worker


def _pool(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """A warm pool started by hand (as runner._pool starts it), and a connection authenticated to it."""
    import socket
    import time

    cfg = {"socket": str(tmp_path / "pool.sock"), "token": "t0k3n", "server_pid": os.getpid(), "idle_seconds": 120,
           "preload": ["fractions", "decimal"], "ready_file": str(tmp_path / "ready")}
    (tmp_path / "pool.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, str(DRIVER), "--pool", str(tmp_path / "pool.json")], cwd=tmp_path,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(cfg["socket"])
    sock.send(json.dumps({"token": "t0k3n"}).encode())
    assert json.loads(sock.recv(4096))["pool"] == "ready"
    return proc, sock


@pytest.mark.parametrize("pool_dies", [False, True])
def test_workers_fork_from_a_warm_pool_or_start_here_when_it_is_gone(tmp_path: Path, pool_dies: bool) -> None:
    """The engine's warm path (runner._pool hands it a connection): workers forked by the pool run the
    job's script in the job's folder with the job's variables; a pool gone before the job asks falls
    back to workers started by the job, said in its log."""
    proc, sock = _pool(tmp_path)
    try:
        if pool_dies:
            proc.kill()
            proc.wait()
        fd = sock.fileno()
        marks, inits, out = _run(tmp_path, f"pool-{pool_dies}", "1", env_extra={"OPENAML_PARALLEL_POOL_FD": str(fd)},
                                 pass_fds=(fd,))
    finally:
        sock.close()
        proc.kill()
        proc.wait()
    wd = tmp_path / f"wd-pool-{pool_dies}"
    assert sorted((wd / "out" / "parallel_run_step.txt").read_text().split()) == [f"f{i}.txt" for i in range(6)]
    if pool_dies:
        assert "the warm pool is gone; workers started from now on start here" in out
        assert not (wd / "logs" / "sys" / "warm_pool.txt").exists()
    else:
        assert "forked from the deployment's warm pool" in out
        assert (wd / "logs" / "sys" / "warm_pool.txt").read_text().count("host pid") == 3
        assert {p.read_text() for p in inits} == {"preloaded"}  # fractions: imported by the pool
        assert len(marks) == 3  # the entry script imported by each worker, in the job (never by the pool)
