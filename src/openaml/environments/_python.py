"""Which Python interpreter an environment is built on.

The order of preference for a spec that asks for Python ``X.Y``:

1. an interpreter of this machine whose ``major.minor`` is ``X.Y`` (the server's own when it
   matches; else uv's view of the machine: ``uv python list --only-installed`` without downloads,
   which covers ``PATH`` and uv-managed interpreters; then pyenv's ``$PYENV_ROOT/versions/*``,
   which uv does not look into when pyenv's shims select another version);
2. when the workspace allows downloads (``environments.python_downloads`` in workspace.json), a
   uv-managed ``X.Y`` that uv downloads at build time; a download that fails fails the build with
   uv's message;
3. else the installed interpreter nearest to ``X.Y`` (smallest minor distance, the newer on a
   tie), recorded as a deviation.

A spec that asks for no Python gets the server's interpreter version. ``interpreters`` (a
workspace setting) replaces the discovered set with a given list of paths.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Interpreter", "PythonChoice", "choose_python", "discover_interpreters", "version_tuple"]


@dataclass(frozen=True)
class Interpreter:
    """An installed interpreter: ``version`` is the full ``X.Y.Z``; ``path`` the executable."""

    version: str
    path: str


@dataclass(frozen=True)
class PythonChoice:
    """What an environment is built on.

    Attributes:
        asked: the ``X.Y`` the spec asked for, or None.
        version: the ``X.Y.Z`` used (for a download, the ``X.Y`` asked).
        path: the interpreter's path, or None for a uv-managed download.
        download: True when uv downloads ``asked`` at build time.
        exact: True when the ``major.minor`` used is the one asked (or none was asked).
    """

    asked: str | None
    version: str
    path: str | None
    download: bool = False

    @property
    def exact(self) -> bool:
        return self.asked is None or version_tuple(self.version)[:2] == version_tuple(self.asked)[:2]

    @property
    def uv_python(self) -> str:
        """The ``--python`` argument for uv."""
        return self.path or self.version


def version_tuple(text: str) -> tuple[int, ...]:
    """``"3.10.13"`` -> ``(3, 10, 13)``; non-numeric parts end the tuple."""
    out: list[int] = []
    for part in str(text).split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group(0)))
    return tuple(out)


def _server() -> Interpreter:
    return Interpreter(".".join(map(str, sys.version_info[:3])), sys.executable)


def _uv_list(uv: str) -> list[Interpreter]:
    try:
        done = subprocess.run([uv, "python", "list", "--only-installed", "--no-python-downloads",
                               "--output-format", "json"], capture_output=True, text=True, timeout=30,
                              check=False)
        rows = json.loads(done.stdout or "[]") if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    out = []
    for row in rows:
        path, version = row.get("path"), row.get("version")
        if path and version and row.get("implementation", "cpython") == "cpython" and os.access(path, os.X_OK):
            out.append(Interpreter(str(version), str(path)))
    return out


def _pyenv() -> list[Interpreter]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if not re.fullmatch(r"\d+\.\d+\.\d+", d.name):
                continue
            exe = d / "bin" / "python3"
            if not exe.exists():
                exe = d / "bin" / "python"
            if exe.exists() and os.access(exe, os.X_OK) and version_tuple(d.name) >= (3,):
                out.append(Interpreter(d.name, str(exe)))
    return out


@lru_cache(maxsize=4)
def _discovered(uv: str) -> tuple[Interpreter, ...]:
    seen: dict[str, Interpreter] = {}
    for it in [_server(), *_uv_list(uv), *_pyenv()]:
        key = ".".join(map(str, version_tuple(it.version)[:2]))
        seen.setdefault(key, it)  # first found of each minor wins: the server's, then uv's, then pyenv's
    return tuple(seen.values())


def discover_interpreters(uv: str, paths: list[str] | None = None) -> list[Interpreter]:
    """One interpreter per ``major.minor`` available here (see the module docstring).

    Args:
        uv: the uv binary.
        paths: when given, only these executables (their versions are asked of them).
    """
    if paths is None:
        return list(_discovered(uv))
    out = []
    for p in paths:
        try:
            v = subprocess.run([p, "-c", "import sys;print('.'.join(map(str, sys.version_info[:3])))"],
                               capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except OSError:
            continue
        if v:
            out.append(Interpreter(v, p))
    return out


def choose_python(asked: str | None, uv: str, *, downloads: bool = False,
                  interpreters: list[str] | None = None) -> PythonChoice:
    """Pick the interpreter for a spec asking for ``asked`` (``"3.10"``, ``"3.10.4"`` or None).

    Raises:
        EnvironmentBuildError: no interpreter at all (only with an empty ``interpreters`` list).
    """
    found = discover_interpreters(uv, interpreters)
    if asked is None:
        server = _server()
        pick = server if interpreters is None else (found[0] if found else None)
        if pick is None:
            from openaml.errors import EnvironmentBuildError

            raise EnvironmentBuildError("no Python interpreter found (workspace setting environments.interpreters)")
        return PythonChoice(None, pick.version, pick.path)
    want = version_tuple(asked)[:2]
    for it in found:
        if version_tuple(it.version)[:2] == want:
            return PythonChoice(asked, it.version, it.path)
    if downloads:
        return PythonChoice(asked, ".".join(map(str, want)), None, download=True)
    if not found:
        from openaml.errors import EnvironmentBuildError

        raise EnvironmentBuildError("no Python interpreter found (workspace setting environments.interpreters)")

    def distance(it: Interpreter) -> tuple[int, int]:
        v = version_tuple(it.version)[:2]
        return (abs(v[0] - want[0]) * 100 + abs(v[1] - want[1] if len(want) > 1 else 0), -v[1])

    best = min(found, key=distance)
    return PythonChoice(asked, best.version, best.path)
