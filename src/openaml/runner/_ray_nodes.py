"""A distributed job's instances on distinct nodes of a Ray cluster (a ``type: ray`` compute).

The job's runner is the Ray job's driver (:mod:`openaml.compute._ray` submits it reserving nothing
and tells it, in ``$OPENAML_RAY_BUNDLE`` and ``$OPENAML_RAY_PLACEMENT``, what one instance
reserves and how instances are placed). :func:`run_on_ray`:

1. reserves a placement group of ``instance_count`` bundles (the compute's ``resources``) with
   Ray's strategy ``SPREAD`` (the default: distinct nodes where there are enough), ``STRICT_SPREAD``
   (distinct nodes or nothing) or ``PACK``, waiting :data:`PLACEMENT_WAIT_SECONDS` at most;
2. starts one actor per bundle (:class:`Instance`, holding the bundle's resources), which answers
   its node's IP, Ray node id and free ports;
3. plans the processes as on local compute (:func:`~openaml.runner._launch.plan_processes`) with
   the nodes' IPs: ``MASTER_ADDR`` is instance 0's IP, ``MASTER_PORT`` a port free there,
   ``AZ_BATCH_HOST_LIST`` the instances' IPs, ``TF_CONFIG`` the tasks' ``ip:port``; each process
   also gets ``OPENAML_RAY_NODE_ID`` (its node);
4. has each actor start its instance's processes (a session of their own each, killed with the
   actor if it dies) writing ``user_logs/std_log_process_<rank>.txt``, and follows them: the first
   rank that fails fails the job naming it and the others are stopped; a lost node (its actor
   dies) fails the job naming the instance and node; a cancel or ``limits.timeout`` stops all.
   The placement group and the actors are removed at the end whatever happened.

A node that does not see the job's folder (another host, no shared disk; found by a marker file
of random content the runner writes there) gets it from the runner through Ray's object store:
the folder (code snapshot, staged inputs, output folders), without its environment layer and its
logs, as one tar put once (:func:`pack_job_folder`) and unpacked by the instance's actor at the
same absolute path, where the job's environment is then built as a runner builds it on a node
(the default environment: a layer over the node's Python; one with packages: built with uv in
the node's cache, ``$OPENAML_RUNNER_ENVS``). While the ranks run, their log files there are read
by the runner into its own copies (each poll), so the combined log and the per-rank logs grow as
on one machine; when they end, the files the instance created or changed in the folder (outputs,
MLflow's ``outputs/``) come back to the runner, instance 0's last (its files win), before the
outputs are placed. A folder bigger than the node's object store can hold is refused by Ray (the
job fails with its error): big data belongs in a datastore (an S3 default datastore) that each
instance reads itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openaml.runner._launch import Combiner, free_ports, plan_processes

if TYPE_CHECKING:
    from openaml.runner._main import Runner

__all__ = ["BUNDLE_ENV", "PLACEMENT_ENV", "Instance", "on_ray", "run_on_ray", "PLACEMENTS", "pack_job_folder"]

#: the variables the Ray backend gives a distributed job's runner: one instance's bundle (JSON) and the strategy
BUNDLE_ENV = "OPENAML_RAY_BUNDLE"
PLACEMENT_ENV = "OPENAML_RAY_PLACEMENT"
#: openaml's placement names -> Ray's placement group strategies
PLACEMENTS = {"spread": "SPREAD", "strict_spread": "STRICT_SPREAD", "pack": "PACK"}
#: how long the placement group may take to be placed before the job fails with the reason
PLACEMENT_WAIT_SECONDS = float(os.environ.get("OPENAML_RAY_PLACEMENT_WAIT", "120"))
GRACE_SECONDS = 5.0
#: the marker file in the job's folder that tells an instance whether it sees the runner's folder
MARKER = ".openaml-job-folder"
#: what is not shipped to a node that does not see the job's folder: the environment layer (built
#: there) and the logs (read back while the ranks run)
NOT_SHIPPED = ("venv", "user_logs")
#: the most bytes of one rank's log read back from a node per poll
LOG_READ = 1 << 20


def pack_job_folder(job_dir: Path, binds: list[tuple[str, str]] | None = None) -> bytes:
    """The job's folder as an uncompressed tar (links kept as links), without :data:`NOT_SHIPPED`
    and the runner's system logs; each read-only input bound into it (``binds``: ``(source,
    target in the folder)``) is copied in at its target, as a node that does not see the
    server's disk cannot bind it."""
    buf = io.BytesIO()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if info.name.startswith("runner/system_logs") else info

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for child in sorted(job_dir.iterdir()):
            if child.name not in NOT_SHIPPED:
                tar.add(child, arcname=child.name, filter=keep)
        for src, dst in binds or []:
            if Path(dst).is_relative_to(job_dir):  # not the environment's own read-only bind
                tar.add(src, arcname=str(Path(dst).relative_to(job_dir)))
    return buf.getvalue()


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of the files under ``root`` outside :data:`NOT_SHIPPED`."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in NOT_SHIPPED]
        for f in filenames:
            path = Path(dirpath) / f
            with contextlib.suppress(OSError):
                st = path.lstat()
                out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def _node_environment(environment: dict[str, Any], job_dir: Path) -> None:
    """The job's environment layer at ``job_dir/venv`` on this node, as a runner builds it on a node
    that does not see the server's disk (module docstring)."""
    from openaml._settings import openaml_home
    from openaml.environments import ensure_environment, find_uv, job_layer, spec_from_dict

    layer = job_dir / "venv"
    if environment.get("kind", "base") == "base":
        job_layer(Path(sys.executable).parent, layer, find_uv(), server=True)
        return
    spec = spec_from_dict(environment)
    envs = Path(os.environ.get("OPENAML_RUNNER_ENVS") or openaml_home() / "runner-envs")
    build_log = job_dir / "runner" / "system_logs" / "node-environment.log"
    build_log.parent.mkdir(parents=True, exist_ok=True)
    shared = ensure_environment(spec, envs, build_log)
    job_layer(shared, layer, find_uv(), pycache=envs / f".{spec.spec_hash}.pycache")


def on_ray() -> bool:
    """Whether this runner is a distributed job's driver on a Ray compute."""
    return bool(os.environ.get(BUNDLE_ENV))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The rank dies with its actor (PR_SET_PDEATHSIG): a node's worker killed leaves no orphan."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


#: the watchdog of an instance's ranks (argv: the actor's pid, the grace in seconds, the ranks' process
#: groups): when the actor is gone (its raylet died: Ray kills the node's workers and their children, not
#: the ranks' children, which run in sessions of their own), it stops the ranks' groups (TERM, then KILL
#: after the grace); it exits once every group is gone. It leaves the actor at once (a fork in a session
#: of its own) so that Ray's kill of the worker's children does not reach it, and follows the actor by a
#: pidfd (no pid reuse)
_WATCHDOG = """
import os, select, signal, sys, time
parent, grace, groups = int(sys.argv[1]), float(sys.argv[2]), [int(a) for a in sys.argv[3:]]
try:
    fd = os.pidfd_open(parent)
except OSError:
    fd = -1
if os.fork():
    os._exit(0)
os.setsid()
def alive():
    left = False
    for g in groups:
        try:
            os.killpg(g, 0)
            left = True
        except PermissionError:
            left = True
        except OSError:
            pass
    return left
def signal_all(sig):
    for g in groups:
        try:
            os.killpg(g, sig)
        except OSError:
            pass
while alive():
    if fd < 0 or select.select([fd], [], [], 0.5)[0]:
        signal_all(signal.SIGTERM)
        signal_all(signal.SIGCONT)
        end = time.monotonic() + grace
        while time.monotonic() < end and alive():
            time.sleep(0.1)
        signal_all(signal.SIGKILL)
        break
"""


def _claim_runner_folder(root: Path) -> Path | None:
    """The runner's ``openaml-job-*`` folder above ``root`` when this node had none (a node of its own):
    its ``.pid`` file names this actor, so the next Ray job's entrypoint on the node removes the folder
    if this actor dies before :meth:`Instance.forget` (compute/_ray.py's sweep); None otherwise."""
    top = next((p for p in (root, *root.parents) if p.name.startswith("openaml-job-")), None)
    if top is None or Path(f"{top}.pid").exists():
        return None
    try:
        Path(f"{top}.pid").write_text(f"{os.getpid()}\n")
    except OSError:
        return None
    return top


class Instance:
    """One instance of a distributed job: a Ray actor in one bundle of the job's placement group."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.mirrored: Path | None = None
        self.shipped: dict[str, tuple[int, int]] = {}
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.top: Path | None = None

    def info(self, nports: int, job_dir: str = "", marker: str = "") -> dict[str, Any]:
        """The node's IP, Ray node id, ``nports`` free ports, and whether it sees the runner's
        ``job_dir`` (its :data:`MARKER` file holds ``marker``)."""
        import ray

        node_id = ray.get_runtime_context().get_node_id()
        # the address the node was started with (--node-ip-address), as the other nodes reach it
        ip = next((str(n["NodeManagerAddress"]) for n in ray.nodes() if n.get("NodeID") == node_id),
                  ray.util.get_node_ip_address())
        sees = True
        if job_dir:
            try:
                sees = (Path(job_dir) / MARKER).read_text(encoding="utf-8") == marker
            except OSError:
                sees = False
        return {"ip": ip, "node_id": node_id, "ports": free_ports(nports), "pid": os.getpid(), "sees": sees}

    def mirror(self, job_dir: str, folder: bytes, environment: dict[str, Any]) -> None:
        """Unpack the runner's job folder (:func:`pack_job_folder`) at the same path on this node
        and build the job's environment there.

        Raises:
            RuntimeError: the path holds something else already, or cannot be written.
        """
        root = Path(job_dir)
        if root.exists() and any(root.iterdir()):
            raise RuntimeError(f"instance {self.index}: {root} exists on its node and is not this job's folder")
        root.mkdir(parents=True, exist_ok=True)
        self.top = _claim_runner_folder(root)
        with tarfile.open(fileobj=io.BytesIO(folder)) as tar:
            tar.extractall(root, filter="fully_trusted")  # noqa: S202 - the runner's own tar of its own folder
        (root / "user_logs").mkdir(exist_ok=True)
        self.mirrored = root
        self.shipped = _files(root)
        _node_environment(environment, root)

    def read_logs(self, offsets: dict[str, int]) -> dict[str, bytes]:
        """What the rank logs ``offsets`` names hold past their offsets (:data:`LOG_READ` bytes at most each)."""
        out: dict[str, bytes] = {}
        for path, offset in offsets.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(LOG_READ)
            except OSError:
                continue
            if data:
                out[path] = data
        return out

    def changed(self) -> bytes:
        """The files the job created or changed in the mirrored folder, as an uncompressed tar."""
        buf = io.BytesIO()
        if self.mirrored is None:
            return b""
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for rel, stat in sorted(_files(self.mirrored).items()):
                if self.shipped.get(rel) != stat and not rel.startswith("runner/"):
                    tar.add(self.mirrored / rel, arcname=rel, recursive=False)
        return buf.getvalue()

    def forget(self) -> None:
        """Remove the mirrored folder (after the files came back)."""
        import shutil

        if self.mirrored is not None:
            shutil.rmtree(self.mirrored, ignore_errors=True)
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            Path(f"{self.top}.pid").unlink(missing_ok=True)

    def start(self, procs: list[dict[str, Any]]) -> dict[int, int]:
        """Start ``procs`` (``rank``, ``argv``, ``env``, ``cwd``, ``log``); their pids by rank.

        Raises:
            RuntimeError: this node does not see the job's folder.
        """
        for p in procs:
            Path(p["log"]).parent.mkdir(parents=True, exist_ok=True)
            if not Path(p["cwd"]).is_dir():
                import ray

                raise RuntimeError(
                    f"instance {self.index}'s node ({ray.get_runtime_context().get_node_id()}) has no folder "
                    f"{p['cwd']}: the job's folder was not shipped there")
            with open(p["log"], "ab", buffering=0) as log:
                self.procs[int(p["rank"])] = subprocess.Popen(
                    p["argv"], cwd=p["cwd"], env=p["env"], stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
        # PR_SET_PDEATHSIG and Ray's kill of a dead worker's children reach the session leaders only, not
        # what they started: a watchdog out of the actor's reach stops the ranks' whole groups when it dies
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(GRACE_SECONDS), *(str(p.pid) for p in self.procs.values())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.watchdog.wait(timeout=30)  # its fork follows the actor
        return {r: pr.pid for r, pr in self.procs.items()}

    def poll(self) -> dict[int, int | None]:
        return {r: p.poll() for r, p in self.procs.items()}

    def stop(self, grace: float = GRACE_SECONDS) -> dict[int, int | None]:
        """SIGTERM every rank's session, SIGKILL what is left after ``grace`` seconds; their exit codes."""
        for sig in (signal.SIGTERM, signal.SIGCONT):
            for p in self.procs.values():
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(p.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.values()):
            time.sleep(0.05)
        for p in self.procs.values():  # the session may outlive its leader: KILL it whole
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        return self.poll()


def bundle_of(text: str) -> dict[str, float]:
    """A placement group bundle from ``$OPENAML_RAY_BUNDLE`` (``{"CPU": 1, "worker": 1}``)."""
    data = json.loads(text)
    return {str(k): float(v) for k, v in data.items() if float(v) > 0} or {"CPU": 0.01}


def run_on_ray(runner: Runner, command: str, env: dict[str, str], wd: Path) -> int:
    """Run the job's processes on ``instance_count`` actors of a placement group; the job's exit code
    (0, or the failing rank's), with ``runner.rank_error`` naming the rank, lost node or placement."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    spec = runner.spec
    nodes = max(1, int((spec.get("resources") or {}).get("instance_count") or 1))
    bundle = bundle_of(os.environ[BUNDLE_ENV])
    strategy = os.environ.get(PLACEMENT_ENV) or "SPREAD"
    runner.log_dir.mkdir(parents=True, exist_ok=True)
    ray.init(log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
    pg = None
    actors: list[Any] = []
    combiner: Combiner | None = None
    try:
        pg = placement_group([dict(bundle) for _ in range(nodes)], strategy=strategy,
                             name=f"openaml-{spec.get('job_name', '')}")
        ready, _ = ray.wait([pg.ready()], timeout=PLACEMENT_WAIT_SECONDS)
        if not ready:
            runner.rank_error = (f"the Ray cluster could not place {nodes} instance(s) of {bundle} with {strategy} "
                                 f"in {PLACEMENT_WAIT_SECONDS:.0f} s (too few nodes with those resources now)")
            return 1
        cpus = bundle.get("CPU", 0.0)
        gpus = bundle.get("GPU", 0.0)
        custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
        remote = ray.remote(Instance)
        for i in range(nodes):
            actors.append(remote.options(  # type: ignore[attr-defined]
                num_cpus=cpus, num_gpus=gpus, resources=custom or None, max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i),
            ).remote(i))
        marker = secrets.token_hex(16)
        (runner.job_dir / MARKER).write_text(marker, encoding="utf-8")
        infos = ray.get([a.info.remote(16, str(runner.job_dir), marker) for a in actors],
                        timeout=PLACEMENT_WAIT_SECONDS)
        hosts = [str(x["ip"]) for x in infos]
        for i, x in enumerate(infos):
            runner.userlog(f"[openaml] instance {i} on Ray node {x['node_id']} ({x['ip']})")
        away = [i for i, x in enumerate(infos) if not x["sees"]]
        runner.syslog(f"placement group {strategy} of {nodes} x {bundle}: nodes {[x['node_id'] for x in infos]}")
        port_pool = list(infos[0]["ports"])
        launch = plan_processes(spec, command, runner.log_dir, runner.job_dir / "runner" / "ranks", hosts=hosts,
                                ports=lambda n: [port_pool.pop(0) for _ in range(n)])
        assert launch is not None  # noqa: S101 - on_ray() is set only for distributed jobs
        for note in launch.notes:
            runner.userlog(f"[openaml] {note}")
        if launch.state_dir is not None:
            launch.state_dir.mkdir(parents=True, exist_ok=True)
        per_actor: dict[int, list[dict[str, Any]]] = {i: [] for i in range(nodes)}
        labels: dict[int, str] = {}
        for p in launch.processes:
            node = int(p.env.get("AZUREML_CR_NODE_RANK") or 0)
            penv = {**env, **p.env, "OPENAML_RAY_NODE_ID": str(infos[node]["node_id"])}
            argv = runner.wrap_command(p.command, penv) if node not in away else _wrap_away(runner, p.command, penv)
            per_actor[node].append({"rank": p.rank, "argv": argv, "env": penv, "cwd": str(wd), "log": str(p.log)})
            labels[p.rank] = p.label
        sources = {f"rank {r}": path for r, path in launch.rank_logs.items()} if launch.mpi else \
            {f"rank {p.rank}": p.log for p in launch.processes}
        if launch.mpi:
            sources["mpirun"] = launch.processes[0].log
        if away:
            problem = _ship(runner, actors, away)
            if problem is not None:
                return problem
        logs = _LogPull(actors, away, per_actor, list(launch.rank_logs.values()) if launch.mpi else [])
        combiner = Combiner(sources, runner.log_path)
        combiner.start()
        try:
            ray.get([a.start.remote(per_actor[i]) for i, a in enumerate(actors) if per_actor[i]], timeout=120)
        except Exception as exc:  # noqa: BLE001 - a node that cannot start its ranks
            runner.rank_error = _cause(exc)
            return 1
        runner.update(status="Running", start_time=time.time())
        code = _follow(runner, launch, actors, infos, labels, logs)
        logs.pull(final=True)
        if away:
            _bring_back(runner, actors, away)
        return code
    finally:
        if actors:
            with contextlib.suppress(Exception):
                ray.get([a.stop.remote() for a in actors], timeout=GRACE_SECONDS + 15)
            with contextlib.suppress(Exception):  # a mirrored folder left by a failure
                ray.get([a.forget.remote() for a in actors], timeout=30)
            for a in actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
        if pg is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(pg)
        if combiner is not None:
            combiner.stop()
        with contextlib.suppress(Exception):
            ray.shutdown()


def _wrap_away(runner: Runner, command: str, env: dict[str, str]) -> list[str]:
    """A rank's argv on a node that does not see the job's folder: no read-only binds (the inputs
    are copied into the shipped folder) and no hiding of the server's secrets (not on that node)."""
    binds, hide = runner.ro_binds, runner.hide_lines
    runner.ro_binds, runner.hide_lines = [], []
    try:
        return runner.wrap_command(command, env)
    finally:
        runner.ro_binds, runner.hide_lines = binds, hide


def _ship(runner: Runner, actors: list[Any], away: list[int]) -> int | None:
    """Ship the job's folder to the instances ``away`` (module docstring); None, or the job's exit
    code when it could not be (``runner.rank_error`` says why) or the job was canceled meanwhile."""
    import ray

    runner.userlog(f"[openaml] instance(s) {', '.join(map(str, away))} run on node(s) that do not see the job's "
                   "folder: it is shipped there through Ray's object store and the environment is built there")
    started = time.monotonic()
    folder = ray.put(pack_job_folder(runner.job_dir, [(str(a), str(b)) for a, b in runner.ro_binds]))
    environment = dict(runner.spec.get("environment") or {})
    pending = [actors[i].mirror.remote(str(runner.job_dir), folder, environment) for i in away]
    waiting = list(pending)
    while waiting:
        _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=1.0)
        if runner.cancel_reason:
            return -int(signal.SIGTERM)
    for i, ref in zip(away, pending, strict=True):
        try:
            ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the node could not take the folder or build the environment
            runner.rank_error = f"instance {i} could not get the job's folder on its node: {_cause(exc)}"
            return 1
    runner.syslog(f"job folder shipped to instance(s) {away} in {time.monotonic() - started:.1f} s")
    return None


def _bring_back(runner: Runner, actors: list[Any], away: list[int]) -> None:
    """The files the instances ``away`` created or changed, into the runner's folder (instance 0's last)."""
    import ray

    for i in sorted(away, reverse=True):
        try:
            data = ray.get(actors[i].changed.remote(), timeout=600)
            if data:
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    tar.extractall(runner.job_dir, filter="fully_trusted")  # noqa: S202 - our own files
            ray.get(actors[i].forget.remote(), timeout=60)
        except Exception as exc:  # noqa: BLE001 - a lost node: its files are lost with it (the job says so)
            runner.userlog(f"[openaml] instance {i}'s files could not be brought back: {_cause(exc)}")
            if not runner.rank_error:
                runner.rank_error = f"instance {i}'s files could not be brought back from its node: {_cause(exc)}"


class _LogPull:
    """The rank logs of the instances that do not see the job's folder, read into the runner's copies."""

    def __init__(self, actors: list[Any], away: list[int], per_actor: dict[int, list[dict[str, Any]]],
                 extra: list[Path]) -> None:
        self.actors = actors
        self.offsets: dict[int, dict[str, int]] = {
            i: {**{str(p["log"]): 0 for p in per_actor[i]}, **{str(x): 0 for x in extra}} for i in away}

    def pull(self, final: bool = False) -> None:
        import ray

        for i, offsets in self.offsets.items():
            while True:
                try:
                    got = ray.get(self.actors[i].read_logs.remote(offsets), timeout=30)
                except Exception:  # noqa: BLE001 - a lost node: the follow loop reports it
                    return
                for path, data in got.items():
                    with open(path, "ab") as fh:
                        fh.write(data)
                    offsets[path] += len(data)
                if not final or not got:
                    break


def _follow(runner: Runner, launch: Any, actors: list[Any], infos: list[dict[str, Any]],
            labels: dict[int, str], logs: _LogPull) -> int:
    import ray

    timeout = runner.spec.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    in_ns = runner.pid_ns or bool(runner.hide_lines)
    failed: tuple[str, int] | None = None
    done: dict[int, int] = {}
    stopping = False
    while True:
        try:
            polled = ray.get([a.poll.remote() for a in actors], timeout=60)
        except Exception as exc:  # noqa: BLE001 - RayActorError: the actor's node (or process) is gone
            lost = _lost(actors, infos)
            runner.rank_error = (f"instance {lost[0]} (Ray node {lost[1]}) was lost while the job ran: {_cause(exc)}"
                                 if lost else f"an instance of the job was lost: {_cause(exc)}")
            runner.userlog(f"[openaml] {runner.rank_error}: stopping the other instances")
            return 1
        logs.pull()
        codes = {r: c for part in polled for r, c in part.items()}
        for rank, code in codes.items():
            if code is None or rank in done:
                continue
            code = -(code - 128) if in_ns and 128 < code <= 128 + 64 else code
            done[rank] = code
            runner.syslog(f"{labels.get(rank, f'rank {rank}')} exited with code {code}")
            if code != 0 and failed is None:
                failed = (labels.get(rank, f"rank {rank}"), code)
                if len(done) < len(codes) and not runner.cancel_reason:
                    runner.userlog(f"[openaml] {_describe(*failed)}: stopping the other processes on every node")
        if len(done) == len(codes):
            break
        if deadline is not None and time.monotonic() > deadline and runner.cancel_reason is None:
            runner.cancel_reason = f"the job exceeded limits.timeout ({timeout} s) and was canceled"
            runner.userlog(f"\n[openaml] {runner.cancel_reason}")
        if (failed is not None or runner.cancel_reason) and not stopping:
            stopping = True
            ray.get([a.stop.remote() for a in actors], timeout=GRACE_SECONDS + 30)
            continue
        time.sleep(0.2)
    if failed is None:
        return 0
    if launch.mpi and launch.state_dir is not None:
        from openaml.runner._launch import mpi_failed_rank

        rank = mpi_failed_rank(launch.state_dir)
        if rank is not None:
            runner.rank_error = _describe(f"rank {rank[0]}", rank[1]) + " (mpirun stopped the other ranks)"
            return rank[1]
    runner.rank_error = _describe(*failed) + (" (the other processes were stopped)" if len(done) > 1 else "")
    return failed[1]


def _lost(actors: list[Any], infos: list[dict[str, Any]]) -> tuple[int, str] | None:
    import ray

    for i, a in enumerate(actors):
        try:
            ray.get(a.poll.remote(), timeout=10)
        except Exception:  # noqa: BLE001
            return i, str(infos[i]["node_id"])
    return None


def _describe(label: str, code: int) -> str:
    return f"{label} was killed by signal {-code}" if code < 0 else f"{label} exited with code {code}"


def _cause(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():  # a remote error: its last line is the cause ("RuntimeError: ...")
        if line.startswith(("RuntimeError:", "OSError:", "FileNotFoundError:")):
            text = line.split(":", 1)[1].strip()
    return f"{type(exc).__name__}: {text.strip().splitlines()[0][:400] if text.strip() else ''}" \
        if text == str(exc) else text
