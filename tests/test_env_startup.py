"""What a job's interpreter costs at start, over a shared environment (regressions of the job start-up
latency found while measuring issue 10's `job create` figures)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from openaml.environments import find_uv, job_layer
from openaml.environments._curated_hook import _SOURCE


def test_bytecode_precompile_covers_the_standard_library(tmp_path: Path) -> None:
    """With ``sys.pycache_prefix`` set (a shared environment is read-only to its jobs), every import,
    the standard library's included, looks for bytecode in the prefix: compiling only site-packages
    there left each job compiling ``typing``, ``collections`` ... from source (~0.15 s a start)."""
    uv = find_uv()
    base_env = tmp_path / "base-env"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(base_env)], check=True)
    (next(base_env.glob("lib/python*/site-packages")) / "tiny_mod.py").write_text("X = 1\n")
    pycache = tmp_path / "pycache"
    bin_dir = job_layer(base_env / "bin", tmp_path / "layer", uv, pycache=pycache)
    deadline = time.monotonic() + 600  # one background compile of the standard library: ~10-60 s
    while not (pycache / ".compiled").is_file():
        assert time.monotonic() < deadline, f"no .compiled marker in {pycache} after 600 s"
        time.sleep(0.5)
    assert not (pycache / ".compiling").exists()
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    tag = sys.implementation.cache_tag
    assert (pycache / str(stdlib).lstrip("/") / f"typing.{tag}.pyc").is_file()
    assert (pycache / str(stdlib).lstrip("/") / "collections" / f"__init__.{tag}.pyc").is_file()
    assert list(pycache.rglob(f"tiny_mod.{tag}.pyc")), "the environment's own site-packages are compiled too"
    assert not list(pycache.rglob(f"test_grammar.{tag}.pyc")), "the standard library's tests are not"
    # the layer's interpreter finds them: typing comes from the prefix's bytecode
    out = subprocess.run([str(bin_dir / "python"), "-c",
                          "import sys, typing, json; print(json.dumps([sys.pycache_prefix, typing.__cached__]))"],
                         capture_output=True, text=True, check=True)
    prefix, cached = json.loads(out.stdout)
    assert Path(prefix) == pycache
    assert Path(cached).is_file() and Path(cached).is_relative_to(pycache)


def test_curated_hook_imports_nothing_at_start_and_still_sets_cloudpickle() -> None:
    """The curated environments' ``.pth`` hook runs at every interpreter start: it must not pull
    ``importlib.abc`` and ``typing`` in (they are what made each job start ~0.2 s slower), and it
    must still make ``mlflow.sklearn`` save with cloudpickle by default."""
    code = ("import sys, json\nbefore = set(sys.modules)\n"
            f"exec(compile({_SOURCE!r}, 'hook', 'exec'))\n"
            "new = sorted(set(sys.modules) - before)\n"
            "import mlflow.sklearn as m\n"
            "print(json.dumps([new, m._get_default_serialization_format()]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    new, fmt = json.loads(out.stdout.strip().splitlines()[-1])
    assert new == []
    assert fmt == "cloudpickle"
