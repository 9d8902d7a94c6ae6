"""Runner implementation (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from openaml._templates import format_literal, render
from openaml.runner._procs import GRACE_SECONDS, exit_waiter, kill_group
from openaml.runner._report import TRANSIENT, JobGone, Link, Reporter
from openaml.runner._transfer import Remote, log_artifacts, sees_server_disk

__all__ = ["main", "Runner", "tail_lines", "GRACE_SECONDS"]

LOG_TAIL_LINES = 30
TOKEN_ENV = "OPENAML_RUNNER_TOKEN"
RUNNER_TOKEN_WARNING = (
    "the runner's token is NOT protected from this job's code: PID namespaces (unshare -p) are unavailable "
    "here, so the command could read it from the runner's process and report this job's state, logs or "
    "outputs itself (see docs/guide/security.md)")


def tail_lines(path: Path, n: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-n:]


def _copy_tree(src: Path, dst: Path) -> None:
    if not src.exists():
        return
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        return

    def _no_links(folder: str, names: list[str]) -> list[str]:
        # a link in ./outputs could point anywhere (/etc): links are not artifacts
        return [n for n in names if os.path.islink(os.path.join(folder, n))]

    shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=False, ignore=_no_links)


ERROR_FILE = ".openaml_error"  # in the working folder: see build_env

class Runner:
    """Runs one job in ``job_dir`` (its work folder: the job's folder on a shared disk, or any
    folder), from ``spec`` (the server's ``GET .../runner/spec``), reporting through ``reporter``
    (None: report nothing, for tests of the phases). Its own copies of the logs are in
    ``job_dir/runner/`` (shipped to the server's job folder). Where the server's disk is not
    visible (:func:`~openaml.runner._transfer.sees_server_disk`), its code, inputs, outputs and
    artifacts go over HTTP (:mod:`openaml.runner._transfer`); else it reads and writes the paths
    of its spec itself."""

    def __init__(self, job_dir: Path, spec: dict[str, Any], reporter: Reporter | None = None) -> None:
        self.job_dir = job_dir
        self.spec: dict[str, Any] = spec
        self.reporter = reporter
        self._server_disk: bool | None = None
        self.state: dict[str, Any] = {"status": "Preparing", "runner_pid": os.getpid()}
        self.proc: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []  # a distributed job's processes (_ranks)
        self.rank_error: str | None = None  # "rank 1 exited with code 7" (_ranks)
        self.ro_binds: list[tuple[str, str]] = []
        self.hide_lines: list[str] = []
        self.pid_ns = False  # the command runs in a PID namespace of its own (protect_runner_token)
        self.host_pids = False  # the command sees the machine's processes (a ray distribution: _ray_cluster)
        self._ro_ok: bool | None = None
        self.cancel_reason: str | None = None
        # from this module's import (the runner's Python start and imports before it are not counted)
        self.marks: list[tuple[str, float]] = [("imported", _IMPORTED), ("spec", time.monotonic())]
        self.shared_python: Path | None = None  # the environment's interpreter (a batch deployment's warm pool)
        self.pass_fds: tuple[int, ...] = ()  # descriptors the command inherits (the warm pool's connection)
        self.log_dir = job_dir / "runner" / "user_logs"
        self.log_path = self.log_dir / "std_log.txt"
        self.sys_log = job_dir / "runner" / "system_logs" / "runner.log"
        self.link = Link(reporter, {"user": self.log_path, "system": self.sys_log}, self.state,
                         on_stop=self._stop_command, syslog=self.syslog, heartbeat_seconds=spec.get("heartbeat_seconds"))

    def sees_server_disk(self) -> bool:
        """Whether the server's workspace folder is visible here (else: files over HTTP)."""
        if self._server_disk is None:
            self._server_disk = sees_server_disk(self.spec)
            if not self._server_disk:
                self.syslog("the server's workspace folder is not visible here: code, inputs, outputs and "
                            "artifacts go over HTTP")
        return self._server_disk

    def remote(self) -> Remote:
        return Remote(self.reporter, self.job_dir)

    # ---------------------------------------------------------------- state (reported over HTTP: _report.Link)
    def update(self, **fields: Any) -> None:
        """Change the job's state and report it."""
        self.link.update(**fields)

    def _stop_command(self, reason: str) -> None:
        """A cancel from the server, or a server that no longer takes this job's reports."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self._kill_user()

    def syslog_marks(self) -> None:
        """``prepared in 0.412 s: first report 0.021, environment 0.060, ...`` (each phase's seconds)."""
        if len(self.marks) > 1:
            steps = ", ".join(f"{name} {t - self.marks[i][1]:.3f}" for i, (name, t) in enumerate(self.marks[1:]))
            self.syslog(f"prepared in {self.marks[-1][1] - self.marks[0][1]:.3f} s: {steps}")

    def mark(self, phase: str) -> None:
        """Note the end of a preparation phase; the command's start writes them all to the system log
        (``prepared in ...``: where a job's time before Running goes)."""
        self.marks.append((phase, time.monotonic()))

    def syslog(self, msg: str) -> None:
        self.sys_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.sys_log, "a", encoding="utf-8") as fh:
            now = time.time()
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(now))}.{int(now % 1 * 1000):03d} {msg}\n")

    def userlog(self, msg: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(msg + ("\n" if not msg.endswith("\n") else ""))

    # ---------------------------------------------------------------- signals
    def _on_term(self, signum: int, _frame: Any) -> None:
        # the backend's cancel (the reason is on the job's row; a heartbeat's answer carries it too)
        if self.cancel_reason is None:
            self.cancel_reason = "canceled"
        self._kill_user()

    def _kill_user(self) -> None:
        """SIGTERM every process group of the job's command (one per rank), SIGKILL after a grace period."""
        for proc in [p for p in (self.proc, *self.procs) if p is not None]:
            kill_group(proc)

    # ---------------------------------------------------------------- phases
    def prepare_environment(self) -> str:
        """The job's interpreter: its own layer over the cached environment (never the server's).

        Warnings (Python asked vs used; pins relaxed by the build) go to the top of the job's log
        and, for those found while building, to the reported state (``env_warnings``) for the job's
        ``warnings``.
        """
        from openaml.environments import (
            ensure_environment,
            env_info,
            env_status,
            find_uv,
            job_layer,
            spec_from_dict,
        )

        env = self.spec.get("environment") or {}
        known = list(env.get("warnings") or [])
        for w in known:
            self.userlog(f"[openaml] environment: {w}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        layer = self.job_dir / "venv"
        if env.get("kind", "base") == "base":
            self._protect_interpreters(None)
            self.shared_python = Path(sys.executable)
            bin_dir = job_layer(Path(sys.executable).parent, layer, find_uv(), server=True)
            from openaml.environments._curated_hook import install_curated_hooks, wants_curated_hooks
            from openaml.environments._layer import site_dirs

            if wants_curated_hooks(env):  # Azure's RAI environments: sklearn saved as on Azure's image
                install_curated_hooks(site_dirs(layer)[0])
            return str(bin_dir)
        # progress lines ("building ... with uv", "reusing ...", "ready in N s") go to the user's log, so a
        # job that waits for its virtualenv says so; uv's own output stays in the environment's build.log
        spec = spec_from_dict(env)
        envs = self.envs_dir()
        # reusing a built environment is routine (system log); a build is what the user waits for (user log)
        target = self.sys_log if env_status(spec, envs) == "built" else self.log_path
        self.sys_log.parent.mkdir(parents=True, exist_ok=True)
        shared = ensure_environment(spec, envs, target)
        info = env_info(spec, envs) or {}
        found = [d for d in info.get("deviations") or [] if d not in known]
        for d in found:
            self.userlog(f"[openaml] environment: {d}")
        if found:
            self.update(env_warnings=found)
        self.syslog(f"environment: Python {info.get('python', '?')} ({spec.source}); lock: "
                    f"{envs / spec.spec_hash / 'lock.txt'}")
        self._protect_interpreters(shared)
        self.shared_python = Path(shared) / "python"
        return str(job_layer(shared, layer, find_uv(), pycache=envs / f".{spec.spec_hash}.pycache"))

    def envs_dir(self) -> Path:
        """Where environments are built and reused: the server's ``envs/`` where its disk is visible,
        else a folder of this machine (``$OPENAML_RUNNER_ENVS``, default ``<openaml home>/runner-envs``:
        the runner builds the job's environment there itself, from the spec's package list)."""
        if self.sees_server_disk():
            return Path(self.spec["envs_dir"])
        from openaml._settings import openaml_home

        return Path(os.environ.get("OPENAML_RUNNER_ENVS") or openaml_home() / "runner-envs")

    def _protect_interpreters(self, shared_bin: Path | None) -> None:
        """Mount read-only, in the job's mount namespace (as ``ro_mount`` inputs), the job's shared
        environment and the interpreter it was made from, and this runner's (the server's) own
        interpreter, virtualenv and ``sys.path`` folders (:func:`openaml.environments.interpreter_roots`):
        even a job run as root cannot change what the next job, the runner, the server or the CLI runs
        (a ``.pth``, a module, a script); the job's layer takes its installs either way."""
        from openaml.environments import interpreter_roots

        if not self.read_only_mounts_available():
            return
        job_dir = self.job_dir.resolve()
        for root in interpreter_roots(shared_bin, keep_writable=[job_dir]):
            self.ro_binds.append((str(root), str(root)))

    def prepare_inputs(self) -> dict[str, str | None]:
        """Each input's value for ``${{inputs.x}}``: a literal, the URI (``direct``), or a path.

        Data inputs name their datastore (its non-secret definition) and the path in it; the runner
        opens the datastore's port (:func:`openaml.datastores.open_datastore`): ``download`` and
        ``eval_download`` copy the files into the job's ``inputs/<name>/`` (a private, writable copy);
        ``ro_mount`` (and ``eval_mount``) use the datastore's local path, bound read-only where mount
        namespaces exist; a datastore without a local path is downloaded instead (said in the system
        log). Models and MLflow run artifacts come as a ``local_path``. Where the server's disk is
        not visible, a local datastore's files and a ``local_path`` are downloaded from the server
        (``GET .../runner/inputs/<name>``), whatever the mode.
        """
        values: dict[str, str | None] = {}
        for name, inp in (self.spec.get("inputs") or {}).items():
            if "value" in inp:
                values[name] = None if inp["value"] is None else format_literal(inp["value"])
                continue
            mode = inp.get("mode") or "ro_mount"
            if mode == "direct" or (inp.get("local_path") is None and inp.get("datastore") is None):
                values[name] = inp.get("uri")
                continue
            if inp.get("datastore") is not None:
                from openaml.datastores import open_datastore

                port = open_datastore(inp["datastore"])
                rel = inp.get("path") or ""
                if port.has_local_path and not self.sees_server_disk():
                    values[name] = str(self._fetch_input(name, mode, rel.rstrip("/").rsplit("/", 1)[-1] or port.name))
                    continue
                if not port.exists(rel):
                    raise RuntimeError(f"input {name!r}: {inp.get('uri') or port.uri(rel)} does not exist")
                if mode in ("download", "eval_download") or not port.has_local_path:
                    if mode not in ("download", "eval_download"):
                        self.syslog(f"input {name!r}: datastore {port.name!r} (type {port.type}) has no local "
                                    f"path; {mode} served as a download")
                    dst = self.job_dir / "inputs" / name / (rel.rstrip("/").rsplit("/", 1)[-1] or port.name)
                    port.get(rel, dst)
                    values[name] = str(dst)
                    continue
                src = port.local_path(rel)
            else:
                src = Path(inp["local_path"])
                if not self.sees_server_disk():
                    values[name] = str(self._fetch_input(name, mode, src.name))
                    continue
                if not src.exists():
                    raise RuntimeError(f"input {name!r}: {inp.get('uri') or src} does not exist")
                if mode in ("download", "eval_download"):
                    dst = self.job_dir / "inputs" / name / src.name
                    _copy_tree(src, dst)
                    values[name] = str(dst)
                    continue
            if self.read_only_mounts_available():
                # ro_mount: a read-only bind mount of the datastore path, in the job's own mount
                # namespace, so a job cannot change registered (immutable) data
                dst = self.job_dir / "inputs" / name / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    dst.mkdir(exist_ok=True)
                else:
                    dst.touch(exist_ok=True)
                self.ro_binds.append((str(src), str(dst)))
                values[name] = str(dst)
            else:
                values[name] = str(src)
        return values

    def _fetch_input(self, name: str, mode: str, top: str) -> Path:
        if mode not in ("download", "eval_download"):
            self.syslog(f"input {name!r}: the server's disk is not visible here; {mode} served as a download")
        return self.remote().input(name, top, self.job_dir / "inputs" / name)

    def read_only_mounts_available(self) -> bool:
        """Whether ``unshare -m`` + a read-only bind mount works here (root, or user namespaces)."""
        from openaml.environments import read_only_mounts_available

        if self._ro_ok is None:
            self._ro_ok = read_only_mounts_available()
            if not self._ro_ok:
                self.syslog("read-only bind mounts unavailable: ro_mount inputs are the datastore paths themselves")
        return self._ro_ok

    def hide_secrets(self) -> None:
        """Hide the workspace's secrets from the job (``_hide``'s docstring); where mount namespaces are
        unavailable, say so at the top of the job's log and in its ``warnings`` (``env_warnings``)."""
        from openaml._settings import openaml_home
        from openaml.environments._hide import NOT_HIDDEN_WARNING, hide_script

        job_dir = self.job_dir.resolve()
        workspace = job_dir.parent.parent
        if not (workspace / "workspace.json").is_file():
            self.syslog(f"{job_dir} is not in a workspace's jobs/ folder: nothing to hide")
            return
        if not self.read_only_mounts_available():
            self.userlog(f"[openaml] warning: {NOT_HIDDEN_WARNING}")
            self.update(env_warnings=[*(self.state.get("env_warnings") or []), NOT_HIDDEN_WARNING])
            return
        self.hide_lines = hide_script(workspace, job_dir, openaml_home(), self.spec.get("hidden_files"),
                                      self.spec.get("read_only_dirs"))

    def protect_runner_token(self) -> None:
        """Keep the runner's token (it alone may report the job's state, logs and outputs) from the
        job's command: the command runs in a PID namespace of its own, where the runner's process
        (its memory, ``/proc/<pid>/environ``) is not there to read. Where namespaces are unavailable,
        say so at the top of the job's log and in its ``warnings``."""
        if self.read_only_mounts_available():
            self.pid_ns = True
            return
        self.userlog(f"[openaml] warning: {RUNNER_TOKEN_WARNING}")
        self.update(env_warnings=[*(self.state.get("env_warnings") or []), RUNNER_TOKEN_WARNING])

    def wrap_command(self, command: str, env: dict[str, str]) -> list[str]:
        """``bash -c command``, inside a private mount namespace that holds the read-only inputs and hides
        the workspace's secrets (``hide_secrets``), when any."""
        from openaml.environments import wrap_read_only

        # read-only binds first: their sources (a model in mlartifacts/) may be hidden next; hiding
        # binds the job's folder and envs/ back recursively, read-only submounts included
        # ":": a PID namespace (protect_runner_token) even when there is nothing to bind or hide
        if self.host_pids:  # a ray distribution's command: Ray's driver finds its node's raylet among the processes
            return wrap_read_only(["bash", "-c", command], self.ro_binds, then=self.hide_lines, pid_namespace=False) \
                if self.ro_binds or self.hide_lines else ["bash", "-c", command]
        then = self.hide_lines or ([":"] if self.pid_ns else [])
        return wrap_read_only(["bash", "-c", command], self.ro_binds, then=then,
                              pid_namespace=self.pid_ns or bool(self.hide_lines))

    def prepare_outputs(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, out in (self.spec.get("outputs") or {}).items():
            stage = self.job_dir / "outputs" / name
            stage.mkdir(parents=True, exist_ok=True)
            if out.get("type") == "uri_file":
                values[name] = str(stage / (out.get("file_name") or name))
            else:
                values[name] = str(stage)
        return values

    def build_env(self, bin_dir: str, inputs: dict[str, str | None], outputs: dict[str, str],
                  wd: Path) -> dict[str, str]:
        s = self.spec
        env = dict(os.environ)
        for k in ("VIRTUAL_ENV", "PYTHONHOME", "OPENAML_WORKSPACE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID",
                  "MLFLOW_REGISTRY_URI", "OPENAML_TOKEN", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                  "MLFLOW_TRACKING_PASSWORD"):
            env.pop(k, None)
        # The server's MLflow configuration (store URIs, which may hold database credentials; MLflow's
        # server exports MLFLOW_REGISTRY_URI) must not reach user code: jobs talk to the HTTP server only.
        for k in [k for k in env if k.startswith(("_MLFLOW_SERVER_", "MLFLOW_SERVER_"))]:
            env.pop(k, None)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        if Path(bin_dir).parent.joinpath("pyvenv.cfg").exists():
            env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
        node_root = self.job_dir / "node"
        (node_root / "shared").mkdir(parents=True, exist_ok=True)
        env.update({
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_TRACKING_URI": s["tracking_uri"],
            "MLFLOW_RUN_ID": s["run_id"],
            "MLFLOW_EXPERIMENT_ID": str(s["experiment_id"]),
            "MLFLOW_EXPERIMENT_NAME": s["experiment_name"],
            "AZUREML_RUN_ID": s["job_name"],
            # a command that fails may say why in this file: its text becomes the job's error (the
            # parallel engine's "3 items failed, more than error_threshold 1"), not "exited with code 1"
            "OPENAML_ERROR_FILE": str(wd / ERROR_FILE),
            "AZUREML_ARM_SUBSCRIPTION": "local",
            "AZUREML_ARM_RESOURCEGROUP": "local",
            "AZUREML_ARM_WORKSPACE_NAME": s["workspace_name"],
            "AZUREML_ARM_PROJECT_NAME": s["experiment_name"],
            "AZUREML_EXPERIMENT_ID": str(s["experiment_id"]),
            "AZUREML_SERVICE_ENDPOINT": s["server_url"],
            "AZUREML_DISCOVERY_SERVICE_ENDPOINT": s["server_url"],
            "AZUREML_CR_EXECUTION_WORKING_DIR_PATH": str(wd),
            "AZUREML_NODE_COUNT": str((s.get("resources") or {}).get("instance_count", 1)),
            "AZUREML_PROCESS_NAME": "rank_0",
            "AZUREML_CR_NODE_RANK": "0",
            "AZ_BATCHAI_CLUSTER_NAME": s["compute"],
            "AZ_BATCH_NODE_ID": f"{s['compute']}-0",
            "AZ_BATCH_HOST_LIST": "127.0.0.1",
            "AZ_BATCH_NODE_ROOT_DIR": str(node_root),
            "AZ_BATCH_NODE_SHARED_DIR": str(node_root / "shared"),
            "AZ_BATCH_CERTIFICATES_DIR": str(node_root / "certs"),
        })
        # the command's own token (scope "job": its run and its record, while the job runs), never the
        # runner's (which alone may report the job's state, logs and outputs), never the server's
        if s.get("command_token"):
            env["MLFLOW_TRACKING_TOKEN"] = s["command_token"]
            env["OPENAML_TOKEN"] = s["command_token"]
        for name, value in inputs.items():
            if value is not None:
                env[f"AZURE_ML_INPUT_{name}"] = value
        for name, value in outputs.items():
            env[f"AZURE_ML_OUTPUT_{name}"] = value
        env.update({k: str(v) for k, v in (s.get("environment_variables") or {}).items()})
        return env

    def run_command(self, command: str, env: dict[str, str], wd: Path) -> int:
        """Run the command (a distributed job's processes: :mod:`openaml.runner._ranks`); its exit code
        (negative: killed by that signal)."""
        from openaml.runner._launch import plan_processes
        from openaml.runner._ray_nodes import on_ray

        if on_ray():  # a distributed job on a Ray compute: its instances on the nodes of a placement group
            from openaml.runner._ray_nodes import run_on_ray

            return run_on_ray(self, command, env, wd)
        if (self.spec.get("distribution") or {}).get("type") == "ray":  # a Ray cluster for the job (_ray_cluster)
            from openaml.runner._ray_cluster import run_with_ray_cluster

            return run_with_ray_cluster(self, command, env, wd)
        launch = plan_processes(self.spec, command, self.log_dir, self.job_dir / "runner" / "ranks")
        if launch is not None:
            from openaml.runner._ranks import run_launch

            return run_launch(self, launch, env, wd)
        return self.run_single(command, env, wd)

    def run_single(self, command: str, env: dict[str, str], wd: Path) -> int:
        """Run the command as one process (its exit code; negative: killed by that signal)."""
        timeout = self.spec.get("timeout")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab", buffering=0) as log:
            # its own process group in the runner's session: the backend's kill finds it even after the runner died
            self.proc = subprocess.Popen(self.wrap_command(command, env), cwd=str(wd), env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, process_group=0, pass_fds=self.pass_fds)
            for fd in self.pass_fds:  # the command has its own copy
                os.close(fd)
            self.pass_fds = ()
            self.mark("command started")
            self.update(status="Running", user_pid=self.proc.pid, user_pgid=self.proc.pid, start_time=time.time())
            self.syslog_marks()
            deadline = time.monotonic() + timeout if timeout else None
            exited = exit_waiter(self.proc)
            while True:
                code = exited(0.2)
                if code is not None:
                    # in a PID namespace the command's shell is the namespace's init, which reports a
                    # command killed by signal N as 128+N (as bash does): told as the signal again
                    in_ns = (self.pid_ns or bool(self.hide_lines)) and not self.host_pids
                    return -(code - 128) if in_ns and 128 < code <= 128 + 64 else code
                else:
                    if deadline is not None and time.monotonic() > deadline and self.cancel_reason is None:
                        self.cancel_reason = f"the job exceeded limits.timeout ({timeout} s) and was canceled"
                        self.userlog(f"\n[openaml] {self.cancel_reason}")
                        self._kill_user()

    def finalize(self, wd: Path, outputs: dict[str, str], success: bool) -> dict[str, str]:
        """Upload ``./outputs``, ``./logs`` and the user log as the run's artifacts (links left out),
        then, on success, put the declared outputs into their datastore paths. Returns where each
        output landed."""
        here = self.sees_server_disk()
        artifacts = Path(self.spec["artifact_dir"]) if here else self.job_dir / "artifacts-stage"
        artifacts.mkdir(parents=True, exist_ok=True)
        _copy_tree(wd / "outputs", artifacts / "outputs")
        _copy_tree(wd / "logs", artifacts / "logs")
        _copy_tree(self.log_dir, artifacts / "user_logs")
        if not here:  # through MLflow's client: the server's artifact proxy, with the job's token
            log_artifacts(self.spec, {k: artifacts / k for k in ("outputs", "logs", "user_logs")})
            shutil.rmtree(artifacts, ignore_errors=True)
        moved: dict[str, str] = {}
        if not success:
            return moved
        from openaml.runner._outputs import output_problem

        declared = self.spec.get("outputs") or {}
        for name, out in declared.items():  # all checked before any is put: a failed job publishes nothing
            stage = self.job_dir / "outputs" / name
            problem = output_problem(name, out, Path(outputs[name]) if out.get("type") == "uri_file" else stage)
            if problem:
                self.userlog(f"[openaml] {problem}")
                raise ValueError(problem)
        for name, out in declared.items():
            landed = self._place_output(name, out, Path(outputs[name]))
            if landed is not None:
                moved[name] = landed
        return moved

    def _place_output(self, name: str, out: dict[str, Any], produced: Path) -> str | None:
        """Put a declared output into its datastore path (``rw_mount`` and ``upload`` alike: the job
        writes into its own ``outputs/<name>``, and only a job that succeeded publishes it, so a
        failed job leaves no partial output). Returns where it landed, or None (nothing written)."""
        stage = self.job_dir / "outputs" / name
        src = produced if out.get("type") == "uri_file" else stage
        if not src.exists():
            return None
        if not self.sees_server_disk() and (out.get("datastore") is None or out["datastore"].get("type") == "local"):
            # the server puts it into its datastore (PUT .../runner/outputs/<name>: staged, then moved)
            arcname = (out.get("file_name") or name) if out.get("type") == "uri_file" else "."
            return self.remote().output(name, src, arcname)
        if out.get("datastore") is not None:
            from openaml.datastores import open_datastore

            port = open_datastore(out["datastore"])
            rel = out.get("path") or ""
            port.put(src, rel, move=True)  # an explicit path shared by several jobs: merged
            return str(port.local_path(rel)) if port.has_local_path else port.uri(rel)
        dest = Path(out["local_path"])  # a job queued by an earlier version: a local path
        if out.get("type") == "uri_file":
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest) if _same_fs(src, dest.parent) else shutil.copy2(src, dest)
        elif dest.exists() and any(dest.iterdir()):
            _copy_tree(stage, dest)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                dest.rmdir()
            if _same_fs(stage, dest.parent):
                os.replace(stage, dest)
            else:
                shutil.copytree(stage, dest)
        return str(dest)

    # ---------------------------------------------------------------- main
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.sys_log.parent.mkdir(parents=True, exist_ok=True)
        self.link.start()
        self.mark("first report")
        if self.spec.get("warm_process") and (self.spec.get("environment") or {}).get("kind", "base") == "base":
            try:  # a step of openaml's own code (RAI, AutoML): its warm process imports meanwhile
                from openaml.runner._step_pool import start_step_pool

                start_step_pool(self, Path(sys.executable))
            except Exception:  # noqa: BLE001 - the step's attach starts it or runs cold (its own log line)
                self.syslog(f"warm process not started early:\n{traceback.format_exc()}")
            self.mark("warm process started")
        wd = self.job_dir / "wd"
        exit_code: int | None = None
        outputs: dict[str, str] = {}
        try:
            bin_dir = self.prepare_environment()
            self.mark("environment")
            if self.cancel_reason:
                raise _Canceled()
            code = self.spec.get("code_dir")
            if code and self.sees_server_disk() and Path(code).exists():
                _copy_tree(Path(code), wd)
            elif code:  # the server's disk is not visible here: the snapshot over HTTP
                self.remote().code(wd)
            wd.mkdir(parents=True, exist_ok=True)
            (wd / "outputs").mkdir(exist_ok=True)
            (wd / "logs").mkdir(exist_ok=True)
            self.mark("code")
            inputs = self.prepare_inputs()
            outputs = self.prepare_outputs()
            self.mark("inputs and outputs")
            self.hide_secrets()
            self.protect_runner_token()
            values = {f"inputs.{k}": v for k, v in inputs.items()}
            values.update({f"outputs.{k}": v for k, v in outputs.items()})
            values["name"] = self.spec["job_name"]
            values["default_datastore"] = "workspaceblobstore"
            command = render(self.spec["command"], values.get)
            env = self.build_env(bin_dir, inputs, outputs, wd)
            self.syslog(f"command: {command}")
            if self.cancel_reason:
                raise _Canceled()
            pool = self._warm_pool(command, wd, env)
            self.mark("warm process")
            exit_code = self.run_command(command, env, wd)
            for fd in self.pass_fds:  # not passed (a command of several processes)
                os.close(fd)
            self.pass_fds = ()
            if pool is not None and exit_code == 0 and not self.cancel_reason:
                try:
                    pool.start_if_needed()
                except Exception:  # noqa: BLE001 - the next job starts cold
                    self.syslog(f"warm pool not started:\n{traceback.format_exc()}")
        except _Canceled:
            pass
        except Exception as exc:  # noqa: BLE001 - any preparation failure fails the job with its message
            self.syslog(traceback.format_exc())
            msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.userlog(f"[openaml] job preparation failed: {msg}")
            self.update(status="Finalizing")
            self._finish("Failed", None, f"preparation failed: {msg}", wd, outputs)
            return 1
        self.update(status="Finalizing", exit_code=exit_code)  # the server takes outputs after an exit code 0 only
        if self.cancel_reason:
            self._finish("Canceled", exit_code, self.cancel_reason, wd, outputs)
            return _not_completed()
        if exit_code == 0:
            self._finish("Completed", 0, None, wd, outputs)
            return 0
        if self.rank_error:
            reason = self.rank_error
        elif exit_code is not None and exit_code < 0:
            reason = f"the job's process was killed by signal {-exit_code}"
        else:
            reason = _said_error(wd) or f"the command exited with code {exit_code}"
        self._finish("Failed", exit_code, reason, wd, outputs)
        return _not_completed()

    def _warm_pool(self, command: str, wd: Path, env: dict[str, str]) -> Any:
        """A batch deployment's warm pool (:mod:`openaml.runner._pool`): connected for this job when
        ready (its descriptor passed to the command), else None or a pool to start after the job."""
        try:
            if self.spec.get("warm_process"):  # a built-in RAI step, an AutoML worker (runner._step_pool)
                from openaml.runner._step_pool import attach_step

                fd = attach_step(self, self.shared_python, env)
                self.pass_fds = () if fd is None else (fd,)
                return None
            from openaml.runner._pool import warm_pool

            pool = warm_pool(self, command, wd, self.shared_python)
            if pool is not None:
                fd = pool.attach(env)
                if fd is not None:
                    self.pass_fds = (fd,)
            return pool
        except Exception:  # noqa: BLE001 - the job starts cold
            self.syslog(f"warm pool not usable:\n{traceback.format_exc()}")
            return None

    def _finish(self, status: str, exit_code: int | None, error: str | None, wd: Path,
                outputs: dict[str, str]) -> None:
        moved: dict[str, str] = {}
        try:
            self._follow_server()
            moved = self.finalize(wd, outputs, success=status == "Completed")
        except Exception as exc:  # noqa: BLE001
            self.syslog(traceback.format_exc())
            status, error = "Failed", f"finalizing failed: {exc}"
        self.link.end(status=status, exit_code=exit_code, error=error, end_time=time.time(), outputs=moved,
                      log_tail=tail_lines(self.log_path))

    #: what a runner takes from the spec of the server it reports to after the one that launched it stopped
    SERVER_FIELDS = ("server_url", "tracking_uri", "artifact_dir", "workspace", "outputs")

    def _follow_server(self) -> None:
        """The runner reports to another server of the workspace (the one that launched it stopped):
        its artifacts and outputs go where that server keeps them (its own spec, over HTTP when its
        folder is not visible here)."""
        if self.reporter is None or not self.reporter.moved or self.spec.get("server_url") == self.reporter.server_url:
            return
        fresh = self.reporter.spec(patience=60.0)
        self.spec.update({k: fresh[k] for k in self.SERVER_FIELDS if k in fresh})
        self._server_disk = None
        self.syslog(f"finalizing through {self.reporter.server_url}")


class _Canceled(Exception):
    pass


def _said_error(wd: Path) -> str | None:
    """What the failed command wrote into ``$OPENAML_ERROR_FILE`` (first 2,000 characters), if anything."""
    try:
        text = (wd / ERROR_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text[:2000] or None


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _not_completed() -> int:
    """The runner's exit code for a job that ended Failed or Canceled: 0, or 1 where its launcher asks
    (``OPENAML_RUNNER_EXIT_NONZERO``: a Ray job then shows FAILED in Ray's job list, not SUCCEEDED)."""
    return 1 if os.environ.get("OPENAML_RUNNER_EXIT_NONZERO") == "1" else 0


_IMPORTED = time.monotonic()


def main(argv: list[str]) -> int:
    """``python -m openaml.runner --server URL --job NAME [--work-dir DIR]``; the job's token comes in
    ``$OPENAML_RUNNER_TOKEN`` or as the first line of stdin (never argv). Exit codes: 0 the job ran
    (whatever its end), 1 preparation failed, 2 usage, 3 the server refused the job, 4 unreachable."""
    parser = argparse.ArgumentParser(prog="python -m openaml.runner", description="Run one openaml job.")
    parser.add_argument("--server", required=True,
                        help="the server's base URL (several: comma-separated, tried in order)")
    parser.add_argument("--job", required=True, help="the job's name")
    parser.add_argument("--work-dir", default=".", help="the folder to work in (default: the current one)")
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, "") or sys.stdin.readline().strip()
    if not token:
        sys.stderr.write(f"openaml runner: no job token (give it in ${TOKEN_ENV} or on stdin)\n")
        return 2
    reporter = Reporter(args.server, args.job, token)
    try:
        spec = reporter.spec()
        reporter.set_servers(spec.get("servers"))
    except JobGone as exc:
        sys.stderr.write(f"openaml runner: the server will not run job {args.job}: {exc}\n")
        return 3
    except TRANSIENT as exc:
        sys.stderr.write(f"openaml runner: cannot reach the server at {args.server}: {exc}\n")
        return 4
    spec["token"] = token  # the runner's token: its reports and its run's artifacts (not its command's)
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    return Runner(work, spec, reporter).run()
