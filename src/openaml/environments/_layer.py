"""A job's private layer over a shared environment (copy on write).

Environments are shared: every job naming ``AzureML-sklearn-1.5`` uses the same cached
virtualenv, and the default environment is the server's own packages. A job must be able to
``pip install`` (as it can in its container on Azure) without changing what the next job, or the
server, gets. Each job therefore runs in its own small virtualenv (``uv venv --seed``: pip, no
other package; about 0.3 s) whose ``site-packages`` ends with the shared environment's through a
``.pth`` file (``site.addsitedir``, so the shared environment's own ``.pth`` files apply too):

- imports find the job's own packages first, then the shared environment's;
- ``pip install X`` writes into the job's layer; upgrading a package of the shared environment
  installs the new version into the layer (pip does not uninstall outside its environment:
  "Not uninstalling ... outside environment"), where it shadows the shared one;
- ``pip`` is the shared environment's pip module run by the layer's interpreter (so it installs
  into the layer); where the shared environment has no pip, uv installs one into the layer;
- the shared environment's console scripts (``mlflow``, ``torchrun``...) are linked into the
  layer's ``bin`` when the layer has none of that name.

The layer is deleted with the job's folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import time
from pathlib import Path

from openaml.errors import EnvironmentBuildError

__all__ = ["job_layer", "site_dirs"]

_PTH = "_openaml_shared_env.pth"
_SKIP = ("python", "pip", "activate", "deactivate", "pydoc", "wheel")
#: the marker of a finished bytecode compile (site-packages and standard library) in a pycache folder
_COMPILED = ".compiled"
#: standard library folders no job imports: not compiled (``compileall -x``)
_STDLIB_SKIP = r"[/\\](test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip|site-packages)[/\\]"


def site_dirs(prefix: Path) -> list[Path]:
    """``site-packages`` folders of a virtualenv at ``prefix`` (purelib, then platlib if different)."""
    found = sorted(prefix.glob("lib/python*/site-packages")) + sorted(prefix.glob("lib64/python*/site-packages"))
    if not found and (prefix / "Lib" / "site-packages").is_dir():  # Windows
        found = [prefix / "Lib" / "site-packages"]
    out: list[Path] = []
    for d in found:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def _server_site_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    out = [Path(paths["purelib"])]
    if paths["platlib"] != paths["purelib"]:
        out.append(Path(paths["platlib"]))
    return out


def _precompile(python: Path, sites: list[Path], pycache: Path, env: dict[str, str]) -> None:
    """Start compiling the shared environment's ``site-packages``, then its interpreter's standard
    library, into ``pycache`` (``compileall``, in the background: about 45 s for a 700 MB environment
    on 2 cores, once per environment; the job does not wait). The standard library is needed too:
    ``sys.pycache_prefix`` applies to every import, so without it each job would compile every standard
    module it imports from source (``typing`` alone ~80 ms); its tests, IDLE and Tk are left out.
    Done once: a ``.compiled`` marker, and a ``.compiling`` one (an hour at most) so that concurrent
    jobs start no second compile. Until it is done, a job compiles what it imports in memory (slower,
    never wrong); each ``.pyc`` is written atomically (``py_compile``)."""
    pycache.mkdir(parents=True, exist_ok=True)
    marker, busy = pycache / _COMPILED, pycache / ".compiling"
    if marker.is_file():
        return
    try:
        if time.time() - busy.stat().st_mtime < 3600:
            return
    except OSError:
        pass
    q = shlex.quote
    py = q(str(python))
    stdlib = "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
    line = (f"{py} -m compileall -q -j 0 {' '.join(q(str(d)) for d in sites)} >/dev/null 2>&1; "
            f"{py} -m compileall -q -j 0 -x {q(_STDLIB_SKIP)} \"$({py} -c {q(stdlib)})\" >/dev/null 2>&1; "
            f"touch {q(str(marker))}; rm -f {q(str(busy))}")
    try:  # a session of its own, left to finish after this process (bounded: one pass over the files);
        # its pid is in the ``.compiling`` marker, so that the server stops it when it stops
        proc = subprocess.Popen(["sh", "-c", line], env={**env, "PYTHONPYCACHEPREFIX": str(pycache)},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        return
    busy.write_text(str(proc.pid), encoding="utf-8")


def stop_precompiles(envs: Path) -> None:
    """Stop the bytecode compiles still running for the environments under ``envs`` (their session,
    found through the pid in each ``.compiling`` marker, checked to be that compile) and drop their
    markers, so that nothing started for a workspace outlives its server; the next job starts the
    compile again."""
    import signal

    import psutil

    for busy in Path(envs).glob(".*.pycache/.compiling"):
        try:
            pid = int(busy.read_text(encoding="utf-8").strip() or 0)
            if pid and "compileall" in " ".join(psutil.Process(pid).cmdline()):
                os.killpg(pid, signal.SIGTERM)
        except (OSError, ValueError, psutil.Error):
            pass
        busy.unlink(missing_ok=True)


def job_layer(shared_bin: str | Path, dest: str | Path, uv: str, *, server: bool = False,
              pycache: str | Path | None = None) -> Path:
    """Create the job's layer at ``dest`` over the environment whose ``bin`` is ``shared_bin``.

    Args:
        shared_bin: the shared environment's ``bin`` folder (from ``ensure_environment``).
        dest: the job's layer folder (inside the job's folder); replaced if present.
        uv: the uv binary.
        server: True when ``shared_bin`` is the server's own interpreter (the default environment):
            its site-packages come from this process's ``sysconfig``.
        pycache: a folder of the environment's bytecode (``sys.pycache_prefix``), for a shared
            environment mounted read-only in the job: Python cannot write ``__pycache__`` there, and
            would otherwise compile every import in every job. This process (the runner or the server,
            outside the job's namespace) fills it once (``compileall``, in the background); jobs and
            workers only read it
            (``envs/`` is read-only to them, so none can plant bytecode the next job would run).

    Returns:
        ``dest/bin``: put it first on ``PATH`` and set ``VIRTUAL_ENV`` to ``dest``.

    Raises:
        EnvironmentBuildError: ``uv venv`` failed (its output in the message).
    """
    shared_bin = Path(shared_bin)
    dest = Path(dest)
    shared_root = shared_bin.parent
    python = shared_bin / ("python.exe" if os.name == "nt" else "python")
    sites = _server_site_dirs() if server else site_dirs(shared_root)
    cmd = [uv, "venv", "--quiet", "--no-python-downloads", "--color", "never", "--python", str(python),
           str(dest)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PYTHON", "PYTHONHOME")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    if done.returncode != 0:
        raise EnvironmentBuildError(f"creating the job's environment layer failed: {' '.join(cmd)}\n"
                                    f"{done.stdout}{done.stderr}".strip())
    own = site_dirs(dest)
    if not own:
        raise EnvironmentBuildError(f"the job's environment layer {dest} has no site-packages folder")
    lines = "".join(f"import site; site.addsitedir({str(d)!r})\n" for d in sites)
    if pycache is not None:
        _precompile(python, sites, Path(pycache), env)
        lines = f"import sys; sys.pycache_prefix = sys.pycache_prefix or {str(pycache)!r}\n" + lines
    (own[0] / _PTH).write_text(lines, encoding="utf-8")
    bin_dir = dest / ("Scripts" if os.name == "nt" else "bin")
    if any((d / "pip" / "__init__.py").is_file() for d in sites):
        for name in ("pip", "pip3"):
            script = bin_dir / name
            script.write_text(f"#!{bin_dir / 'python'}\nimport sys\nfrom pip._internal.cli.main import main\n"
                              "sys.exit(main())\n", encoding="utf-8")
            script.chmod(0o700)  # owner-only, as everything in a workspace (issue 10)
    else:
        done = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(bin_dir / "python"), "pip"],
                              capture_output=True, text=True, env=env, timeout=300, check=False)
        if done.returncode != 0:
            raise EnvironmentBuildError(f"installing pip into the job's environment layer failed:\n"
                                        f"{done.stdout}{done.stderr}".strip())
    if shared_bin.is_dir():
        for script in shared_bin.iterdir():
            if script.name.startswith(_SKIP) or (bin_dir / script.name).exists() or not script.is_file():
                continue
            try:
                (bin_dir / script.name).symlink_to(script)
            except OSError:
                pass
    return bin_dir
