"""Building and caching virtualenvs with uv.

Layout of one cached environment (``envs_dir`` is the workspace's ``envs/`` folder)::

    envs/<spec_hash>/            the virtualenv (bin/python, lib/...)
    envs/<spec_hash>/build.log   uv's output of the last build (kept after a failure too)
    envs/<spec_hash>/requirements.txt   what was asked for (after any relaxed pin, see below)
    envs/<spec_hash>/lock.txt    ``uv pip freeze`` of the result: the exact versions installed
    envs/<spec_hash>/.openaml-ready.json   written last, only after a successful build: python used,
                                 interpreter, lock, deviations (asked vs got)
    envs/.<spec_hash>.lock       file lock: concurrent jobs build an environment once

An environment is ready if and only if its marker exists. A failed build removes everything
but ``build.log``, so nothing half-built ever looks ready; the next use builds it again (a build
killed halfway leaves no marker either, and the next build starts from an empty folder).

Pins: the requirements are installed as written. Where the Python used is not the one asked for
(``EnvSpec.python_exact`` is False) and the set does not install, each ``name==version`` pin is
tried alone on that Python; a pin with no build there is replaced by the nearest version that
installs (the lowest above it, else the highest below), and the deviation is recorded. With the
Python asked for, or with ``strict``, nothing is relaxed: the build fails with uv's resolver
message, which names the package, the version and the Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from openaml.environments._spec import EnvSpec
from openaml.errors import EnvironmentBuildError

__all__ = ["READY_MARKER", "ensure_environment", "env_info", "env_path", "env_status", "find_uv"]

READY_MARKER = ".openaml-ready.json"
_TAIL_LINES = 25


def find_uv() -> str:
    """Path of the uv binary: the one installed with openaml (the ``uv`` package), else ``uv`` on PATH.

    Raises:
        EnvironmentBuildError: uv is not installed.
    """
    try:
        from uv import find_uv_bin

        found = find_uv_bin()
        if found and os.path.isfile(found):
            return str(found)
    except (ImportError, FileNotFoundError):
        pass
    which = shutil.which("uv")
    if which:
        return which
    raise EnvironmentBuildError("uv is needed to build environments and was not found; install it into the "
                                "server's environment: pip install uv")


def env_path(spec: EnvSpec | str, envs_dir: str | Path) -> Path:
    """Folder of the cached virtualenv of ``spec`` (or of a spec hash)."""
    h = spec if isinstance(spec, str) else spec.spec_hash
    return Path(envs_dir) / h


def env_status(spec: EnvSpec, envs_dir: str | Path) -> str:
    """``"base"`` (nothing to build), ``"built"`` (ready marker present) or ``"not built"``."""
    if spec.kind == "base":
        return "base"
    root = env_path(spec, envs_dir)
    return "built" if (root / READY_MARKER).is_file() and _python(root).exists() else "not built"


def env_info(spec: EnvSpec | str, envs_dir: str | Path) -> dict[str, Any] | None:
    """The ready marker of a built environment, or None.

    Returns:
        ``{spec_hash, source, pip, python, python_asked, interpreter, lock: [name==version...],
        deviations: [str...], built_at, seconds}``
    """
    try:
        return json.loads((env_path(spec, envs_dir) / READY_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _bin(root: Path) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin")


def _python(root: Path) -> Path:
    return _bin(root) / ("python.exe" if os.name == "nt" else "python")


def _writer(fh: IO[str] | None) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if fh is not None:
            fh.write(msg.rstrip("\n") + "\n")
            fh.flush()

    return say


@contextlib.contextmanager
def _open_log(log: str | Path | IO[str] | None) -> Iterator[Callable[[str], None]]:
    """A line writer to a path (appended to), an open text file, or nowhere."""
    if isinstance(log, (str, Path)):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            yield _writer(fh)
    else:
        yield _writer(log)


@contextlib.contextmanager
def _file_lock(path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Exclusive lock on ``path`` across processes and threads (flock; msvcrt on Windows)."""
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            waited = False
            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                    break
                except OSError:
                    if not waited:
                        on_wait()
                        waited = True
                    time.sleep(0.2)
            try:
                yield
            finally:
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "UV_PYTHON", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    env["NO_COLOR"] = "1"
    return env


def _tail(path: Path, start: int = 0) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(start)
            lines = fh.read().splitlines()
    except OSError:
        return ""
    tail = lines[-_TAIL_LINES:]
    # uv's own verdict (``× Failed to build `numpy==1.16.0` ``, ``× No solution found``) comes before a
    # long build backend traceback: keep it even when the tail would cut it off
    verdict = [ln for ln in lines[:-_TAIL_LINES] if ln.lstrip().startswith(("× ", "╰─▶", "error:"))][:6]
    return "\n".join([*verdict, *(["..."] if verdict else []), *tail])


def _clear_but_log(root: Path) -> None:
    if not root.exists():
        return
    for child in root.iterdir():
        if child.name == "build.log":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)(\[[^\]]*\])?==([^;,\s]+)$")


def _run(cmd: list[str], blog: IO[str], env: dict[str, str], timeout: float) -> int:
    blog.write("$ " + " ".join(cmd) + "\n")
    blog.flush()
    try:
        return subprocess.run(cmd, check=False, stdout=blog, stderr=subprocess.STDOUT, env=env,
                              timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        blog.write(f"\n{cmd[1:3]} timed out after {timeout:.0f} s\n")
        return 124


def _compile(uv: str, python: Path, reqs: list[str], env: dict[str, str], timeout: float,
             lowest: bool = False) -> tuple[int, str]:
    # wheels only: a version that resolves only through an sdist that does not build here (pyarrow 9 on
    # Python 3.11) must not count as "installs"
    cmd = [uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--color", "never", "--no-build",
           "--python", str(python)]
    if lowest:
        cmd += ["--resolution", "lowest-direct"]
    try:
        done = subprocess.run(cmd, input="\n".join(reqs) + "\n", capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    return done.returncode, done.stdout + done.stderr


def _nearest(uv: str, python: Path, name: str, extras: str, version: str, env: dict[str, str],
             timeout: float) -> str | None:
    """The version of ``name`` nearest to ``version`` that resolves on ``python`` (above first)."""
    for req, lowest in ((f"{name}{extras}>{version}", True), (f"{name}{extras}<{version}", False)):
        rc, out = _compile(uv, python, [req], env, timeout, lowest=lowest)
        if rc == 0:
            canon = re.sub(r"[-_.]+", "-", name).lower()
            for line in out.splitlines():
                m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==(\S+)", line.strip())
                if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() == canon:
                    return m.group(2)
    return None


def _relax(spec: EnvSpec, uv: str, python: Path, used: str, blog: IO[str], env: dict[str, str],
           timeout: float) -> tuple[list[str], list[str]]:
    """Pins with no build for ``python`` replaced by the nearest that installs: (requirements, deviations)."""
    reqs = list(spec.pip)
    deviations: list[str] = []
    for i, req in enumerate(reqs):
        m = _PIN_RE.match(req.split(";", 1)[0].strip())
        if not m:
            continue
        rc, out = _compile(uv, python, [req], env, timeout)
        if rc == 0:
            continue
        name, extras, version = m.group(1), m.group(2) or "", m.group(3)
        blog.write(f"# {req} does not install on Python {used}:\n{out}\n")
        got = _nearest(uv, python, name, extras, version, env, timeout)
        if got is None:
            continue
        reqs[i] = f"{name}{extras}=={got}"
        deviations.append(f"{req} has no build for Python {used} (python {spec.python} was asked for and is not "
                          f"installed here); installed {name}=={got}, the nearest version that installs")
    return reqs, deviations


#: the first release of each package built against NumPy 2 (from their release notes); an older pin
#: is a binary built against NumPy 1.x, which fails at import under NumPy 2 ("numpy.dtype size
#: changed"). conda-forge encodes the same facts in its repodata patches, which is why an Azure
#: image built from the same conda file gets NumPy 1.x.
NUMPY2_FIRST: dict[str, str] = {
    "scikit-learn": "1.4.2", "pandas": "2.2.2", "scipy": "1.13.0", "matplotlib": "3.8.4", "statsmodels": "0.14.2",
    "pyarrow": "16.0.0", "numba": "0.60.0", "h5py": "3.11.0", "shap": "0.46.0", "scikit-image": "0.23.0",
    "numexpr": "2.10.0", "bottleneck": "1.4.0", "tables": "3.10.0", "torch": "2.3.0", "tensorflow": "2.18.0",
    "tensorflow-cpu": "2.18.0", "pandas-datareader": "0.11.0",
}


def numpy_abi_constraints(reqs: list[str]) -> list[str]:
    """``["numpy<2"]`` when a requirement pins (``==``, or an upper bound below) a release of a
    package of :data:`NUMPY2_FIRST` built against NumPy 1.x and numpy itself is not named; else ``[]``.

    The constraint only bounds a package the user left unpinned (their own pins stay exact); it is
    written to the build log and the environment's ``constraints``.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    parsed = []
    for line in reqs:
        try:
            parsed.append(Requirement(line.split("#", 1)[0].strip()))
        except InvalidRequirement:
            continue
    if any(canonicalize_name(r.name) == "numpy" for r in parsed):
        return []
    for r in parsed:
        first = NUMPY2_FIRST.get(canonicalize_name(r.name))
        if first is None:
            continue
        for spec in r.specifier:
            try:
                v = Version(spec.version.rstrip(".*"))
            except InvalidVersion:
                continue
            if spec.operator in ("==", "===", "<=", "~=") and v < Version(first) or \
                    spec.operator == "<" and v <= Version(first):
                return ["numpy<2"]
    return []


def _build(spec: EnvSpec, root: Path, timeout: float) -> None:
    uv = find_uv()
    shutil.rmtree(root, ignore_errors=True)
    env = _uv_env()
    if spec.strict and not spec.python_exact:
        raise EnvironmentBuildError(
            f"building environment {spec.source or spec.spec_hash[:12]} failed: python {spec.python} was asked for "
            f"and is not installed here (nearest: {spec.python_used}); strict mode turns this deviation into a "
            "failure (workspace setting environments.strict or the environment's property strict)",
            details={"spec_hash": spec.spec_hash, "python": spec.python})
    python_arg = spec.interpreter or spec.python_used or sys.executable
    downloads = ["--python-downloads", "automatic"] if spec.interpreter is None and spec.python_used else \
        ["--no-python-downloads"]
    venv_cmd = [uv, "venv", "--no-progress", "--color", "never", "--seed", *downloads, "--python", python_arg,
                str(root)]
    started = time.monotonic()
    try:
        made = subprocess.run(venv_cmd, check=False, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        made = subprocess.CompletedProcess(venv_cmd, 124, "", f"uv venv timed out after {timeout:.0f} s")
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "build.log"
    python = _python(root)
    used = spec.python_used or ""
    deviations: list[str] = [w for w in spec.warnings if w.startswith("python ") and not spec.python_exact]
    with open(log_path, "w", encoding="utf-8") as blog:
        blog.write(f"# openaml environment {spec.spec_hash}\n# source: {spec.source}\n"
                   f"# started: {datetime.now(UTC).isoformat()}\n")
        blog.writelines(f"# warning: {w}\n" for w in spec.warnings)
        blog.write("$ " + " ".join(venv_cmd) + "\n" + made.stdout + made.stderr)
        blog.flush()
        if made.returncode != 0:
            what = "uv venv" if spec.interpreter else f"uv venv (downloading Python {spec.python_used})"
            _fail(spec, root, log_path, what, made.returncode, 0)
        try:
            used = subprocess.run([str(python), "-c", "import platform;print(platform.python_version())"],
                                  capture_output=True, text=True, timeout=60, check=False).stdout.strip() or used
        except OSError:
            pass
        reqs = list(spec.pip)
        (root / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        install = [uv, "pip", "install", "--no-progress", "--color", "never",
                   "--python", str(python), "-r", str(root / "requirements.txt")]
        compat = numpy_abi_constraints(reqs)
        if compat:
            (root / "constraints.txt").write_text("\n".join(compat) + "\n", encoding="utf-8")
            install += ["-c", str(root / "constraints.txt")]
            blog.writelines(f"# constraint: {c}\n" for c in compat)
        mark = blog.tell()
        rc = _run(install, blog, env, timeout)
        if rc != 0 and not spec.python_exact:
            relaxed, notes = _relax(spec, uv, python, used, blog, env, timeout)
            if notes and spec.strict:
                blog.writelines(f"# {n}\n" for n in notes)
                blog.write("# strict: relaxed pins are not allowed\n")
                blog.flush()
                _fail(spec, root, log_path, "uv pip install", rc, mark,
                      why=f"pins do not install on Python {used} and strict mode forbids relaxing them: "
                          + "; ".join(notes))
            if notes:
                (root / "requirements.txt").write_text("\n".join(relaxed) + "\n", encoding="utf-8")
                blog.writelines(f"# relaxed: {n}\n" for n in notes)
                deviations += notes
                mark = blog.tell()
                rc = _run(install, blog, env, timeout)
        if rc != 0:
            blog.write(f"# exit code {rc} after {time.monotonic() - started:.1f} s\n")
            blog.flush()
            asked = f" (python {spec.python} was asked for)" if spec.python and not spec.python_exact else ""
            _fail(spec, root, log_path, "uv pip install", rc, mark,
                  why=f"the requirements cannot be installed together on Python {used}{asked}; uv says:")
        freeze = subprocess.run([uv, "pip", "freeze", "--color", "never", "--python", str(python)], capture_output=True,
                                text=True, env=env, timeout=timeout, check=False)
        lock = [ln.strip() for ln in freeze.stdout.splitlines() if ln.strip()]
        if spec.source.endswith("(curated)"):
            from openaml.environments._curated_hook import install_curated_hooks
            from openaml.environments._layer import site_dirs

            for site in site_dirs(root)[:1]:
                install_curated_hooks(site)
                blog.write("# curated: mlflow.sklearn saves with cloudpickle by default (MLflow 2's format)\n")
        (root / "lock.txt").write_text("\n".join(lock) + "\n", encoding="utf-8")
        blog.write(f"# exit code 0 after {time.monotonic() - started:.1f} s\n")
    info = {"spec_hash": spec.spec_hash, "source": spec.source, "pip": spec.pip,
            "installed_from": (root / "requirements.txt").read_text(encoding="utf-8").split(),
            "python": used, "python_asked": spec.python, "interpreter": spec.interpreter or f"uv-managed {used}",
            "lock": lock, "deviations": deviations, "constraints": compat,
            "built_at": datetime.now(UTC).isoformat(), "seconds": round(time.monotonic() - started, 2)}
    # uv copies or hard-links files from its cache with the cache's modes: make the copy owner-only,
    # like the rest of the workspace (issue 10)
    from openaml.workspace import private_tree

    private_tree(root)
    tmp = root / f".ready.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(tmp, root / READY_MARKER)


def _fail(spec: EnvSpec, root: Path, log_path: Path, step: str, rc: int, mark: int, why: str = "") -> None:
    tail = _tail(log_path, mark)
    _clear_but_log(root)
    raise EnvironmentBuildError(
        f"building environment {spec.source or spec.spec_hash[:12]} failed ({step} exited with {rc}): "
        f"{why or 'its output ends with:'}\n{tail}\nfull log: {log_path}",
        details={"spec_hash": spec.spec_hash, "log": str(log_path), "tail": tail})


def ensure_environment(spec: EnvSpec, envs_dir: str | Path, log: str | Path | IO[str] | None = None, *,
                       timeout: float = 3600.0) -> Path:
    """Make ``spec``'s interpreter ready and return the folder to put first on ``PATH``.

    Args:
        spec: from :func:`resolve_spec` or :func:`spec_from_dict`.
        envs_dir: the cache folder (the workspace's ``layout.envs``).
        log: the job's log (a path, appended to, or an open text file): progress lines are written
            there ("reusing ...", "building ...", "ready in N s"). ``spec.warnings`` are NOT written;
            the caller prints them at the top of the job's log.
        timeout: seconds for each uv step.

    Returns:
        For ``base``: the folder of ``sys.executable`` (the calling interpreter). For ``venv``:
        ``envs_dir/<spec_hash>/bin``, built once with ``uv venv --seed`` + ``uv pip install -r
        requirements.txt`` on the chosen interpreter under a file lock, reused afterwards.

    Raises:
        EnvironmentBuildError: uv is missing or failed; the message ends with the tail of its
            output and names the full ``build.log``. No ready marker is left behind.
    """
    if spec.kind == "base":
        return Path(sys.executable).parent
    if not spec.spec_hash:
        raise EnvironmentBuildError("environment spec has no spec_hash; resolve it with resolve_spec first")
    envs = Path(envs_dir)
    root = envs / spec.spec_hash
    with _open_log(log) as say:
        if env_status(spec, envs) == "built":
            say(f"[openaml] environment: reusing {root} ({spec.source})")
            return _bin(root)
        envs.mkdir(parents=True, exist_ok=True)
        lock = envs / f".{spec.spec_hash}.lock"
        with _file_lock(lock, lambda: say(f"[openaml] environment: waiting for another build of {root}")):
            if env_status(spec, envs) == "built":
                say(f"[openaml] environment: reusing {root} (built by another job)")
                return _bin(root)
            say(f"[openaml] environment: building {root} with uv: {len(spec.pip)} requirement(s) "
                f"({', '.join(spec.pip[:8])}{', ...' if len(spec.pip) > 8 else ''}); log: {root / 'build.log'}")
            started = time.monotonic()
            try:
                _build(spec, root, timeout)
            except EnvironmentBuildError as exc:
                say(f"[openaml] environment: build failed: {exc.message}")
                raise
            say(f"[openaml] environment: ready in {time.monotonic() - started:.1f} s")
        return _bin(root)
