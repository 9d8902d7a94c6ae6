"""Environment builds: openaml against bare ``uv pip install`` and ``pip install`` of the same set.

Three environments (issue 9, "Benchmarks"):

(a) the book's chapter 4 conda file (python=3.10, scikit-learn=1.1.3, mlflow==2.0.1, mltable==1.0.0,
    azureml-mlflow), (b) the curated ``AzureML-sklearn-1.5``, (c) a requirements.txt of 30 packages.

For each, in one run:

- openaml cold: ``ensure_environment`` into an empty envs folder with a private, empty uv cache
  (``UV_CACHE_DIR``), so every wheel is downloaded;
- bare uv cold: ``uv venv --seed --python <same interpreter>`` + ``uv pip install -r`` of exactly the
  requirements openaml installed, another empty private cache;
- pip cold: ``python -m venv`` + ``pip install --no-cache-dir -r`` of the same requirements;
- openaml warm: the same spec again (the cached environment is reused: what every later job waits);
- openaml warm-cache rebuild: a new envs folder, uv cache warm; bare uv warm likewise.

Ratios are openaml / peer. Targets: warm reuse < 1 s; cold within 1.5x of bare uv.

Usage: ``.venv/bin/python bench/environments.py [--quick] [--only a,b,c]``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, machine, parse_args, print_table, progress, save_results  # noqa: E402

CHAPTER4 = {
    "name": "chapter4",
    "channels": ["conda-forge"],
    "dependencies": ["python=3.10", "scikit-learn=1.1.3", "pip",
                     {"pip": ["mlflow==2.0.1", "azureml-mlflow==1.48.0", "mltable==1.0.0"]}],
}
THIRTY = [
    "requests", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "pyyaml", "click",
    "jinja2", "flask", "sqlalchemy", "tqdm", "rich", "typer", "httpx", "pydantic", "attrs", "joblib",
    "lightgbm", "pillow", "pyarrow", "beautifulsoup4", "python-dateutil", "pytz", "tabulate", "toolz",
    "cloudpickle", "networkx", "statsmodels",
]


def _specs() -> dict[str, Any]:
    return {"a": ("book chapter 4 conda file", {"conda_file": CHAPTER4}),
            "b": ("AzureML-sklearn-1.5", "AzureML-sklearn-1.5@latest"),
            "c": ("requirements.txt, 30 packages", {"pip": THIRTY})}


def _uv() -> str:
    from openaml.environments import find_uv

    return find_uv()


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - t


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_CACHE_DIR", "PYTHONHOME")}
    env.update(extra)
    return env


def _openaml_build(spec: Any, envs: Path, cache: Path) -> float:
    from openaml.environments import ensure_environment

    old = os.environ.get("UV_CACHE_DIR")
    os.environ["UV_CACHE_DIR"] = str(cache)
    try:
        t = time.perf_counter()
        ensure_environment(spec, envs)
        return time.perf_counter() - t
    finally:
        if old is None:
            os.environ.pop("UV_CACHE_DIR", None)
        else:
            os.environ["UV_CACHE_DIR"] = old


def _uv_bare(python: str, reqs: Path, dest: Path, cache: Path) -> float:
    uv = _uv()
    env = _clean_env(UV_CACHE_DIR=str(cache))
    shutil.rmtree(dest, ignore_errors=True)
    t = time.perf_counter()
    _timed([uv, "venv", "--quiet", "--seed", "--python", python, str(dest)], env)
    _timed([uv, "pip", "install", "--quiet", "--python", str(dest / "bin" / "python"), "-r", str(reqs)], env)
    return time.perf_counter() - t


def _pip(python: str, reqs: Path, dest: Path, cold: bool) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    env = _clean_env()
    t = time.perf_counter()
    _timed([python, "-m", "venv", str(dest)], env)
    cmd = [str(dest / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
           str(reqs)]
    if cold:
        cmd.insert(4, "--no-cache-dir")
    _timed(cmd, env)
    return time.perf_counter() - t


def _one(key: str, label: str, ref: Any, work: Path, quick: bool) -> list[Row]:
    from openaml.environments import env_info, resolve_spec

    spec = resolve_spec(ref)
    python = spec.interpreter or sys.executable
    progress(f"({key}) {label}: Python {spec.python_used}, {len(spec.pip)} requirement(s)")
    rows: list[Row] = []
    # openaml cold: empty envs folder, empty private uv cache
    cold_s = _openaml_build(spec, work / f"{key}-envs-cold", work / f"{key}-uvcache-openaml")
    info = env_info(spec, work / f"{key}-envs-cold") or {}
    reqs = work / f"{key}-requirements.txt"
    reqs.write_text("\n".join(info.get("installed_from") or spec.pip) + "\n")
    uv_cold = _uv_bare(python, reqs, work / f"{key}-uv-venv", work / f"{key}-uvcache-bare")
    pip_cold = float("nan") if quick else _pip(python, reqs, work / f"{key}-pip-venv", cold=True)
    # warm: the cached environment reused (what a later job waits for)
    t = time.perf_counter()
    _openaml_build(spec, work / f"{key}-envs-cold", work / f"{key}-uvcache-openaml")
    warm_s = time.perf_counter() - t
    # warm uv cache, new envs folder (a new workspace on a machine that built it before)
    rebuild = _openaml_build(spec, work / f"{key}-envs-rebuild", work / f"{key}-uvcache-openaml")
    uv_warm = _uv_bare(python, reqs, work / f"{key}-uv-venv2", work / f"{key}-uvcache-bare")
    pip_warm = float("nan") if quick else _pip(python, reqs, work / f"{key}-pip-venv2", cold=False)
    n = len(info.get("lock") or [])

    def ratio(a: float, b: float) -> float:
        return a / b if b == b and b > 0 else float("nan")

    rows.append(Row(f"({key}) {label}: cold build, s", cold_s, uv_cold, ratio(cold_s, uv_cold), "<= 1.5x bare uv",
                    1.5, ratio(cold_s, uv_cold) <= 1.5, {"pip": pip_cold, "vs_pip": ratio(cold_s, pip_cold),
                                                        "packages": n}))
    rows.append(Row(f"({key}) {label}: warm (cached env reused), s", warm_s, uv_warm, ratio(warm_s, uv_warm),
                    "< 1 s", 1.0, warm_s < 1.0, {"pip": pip_warm, "vs_pip": ratio(warm_s, pip_warm)}))
    rows.append(Row(f"({key}) {label}: rebuild, warm uv cache, s", rebuild, uv_warm, ratio(rebuild, uv_warm),
                    "", None, None, {"pip": pip_warm, "vs_pip": ratio(rebuild, pip_warm)}))
    progress(f"({key}) cold {cold_s:.1f} s (uv {uv_cold:.1f}, pip {pip_cold:.1f}); warm {warm_s:.3f} s; "
             f"rebuild {rebuild:.1f} s (uv {uv_warm:.1f}, pip {pip_warm:.1f}); {n} packages")
    return rows


def main() -> int:
    args = parse_args(__doc__ or "", lambda p: p.add_argument("--only", default="a,b,c"))
    work = Path(tempfile.mkdtemp(prefix="openaml-bench-envs-"))
    rows: list[Row] = []
    try:
        for key, (label, ref) in _specs().items():
            if key in args.only.split(","):
                rows += _one(key, label, ref, work, args.quick)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    print_table("Environment builds: openaml vs bare uv (peer) and pip (extra columns)", rows,
                peer="bare uv", limit="target",
                notes=["cold: empty private UV_CACHE_DIR for openaml and for bare uv; pip with --no-cache-dir",
                       "warm: openaml reuses the cached environment; peers install again with a warm cache",
                       "pip cold/warm and openaml/pip ratios are in the extra columns and the JSON"])
    for r in rows:
        if r.extra.get("pip") is not None:
            print(f"  {r.measure}: pip {r.extra['pip']:.2f} s, openaml/pip {r.extra['vs_pip']:.3f}")
    if not args.no_save:
        save_results("environments", {"machine": machine(), "rows": [r.__dict__ for r in rows]})
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
