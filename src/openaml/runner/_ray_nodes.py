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

The actors' nodes must see the job's folder (its code, environment and logs) at the runner's
path: true on one machine and with the runner's folder on a shared disk; a node that does not is
named in the job's error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openaml.runner._launch import Combiner, free_ports, plan_processes

if TYPE_CHECKING:
    from openaml.runner._main import Runner

__all__ = ["BUNDLE_ENV", "PLACEMENT_ENV", "Instance", "on_ray", "run_on_ray", "PLACEMENTS"]

#: the variables the Ray backend gives a distributed job's runner: one instance's bundle (JSON) and the strategy
BUNDLE_ENV = "OPENAML_RAY_BUNDLE"
PLACEMENT_ENV = "OPENAML_RAY_PLACEMENT"
#: openaml's placement names -> Ray's placement group strategies
PLACEMENTS = {"spread": "SPREAD", "strict_spread": "STRICT_SPREAD", "pack": "PACK"}
#: how long the placement group may take to be placed before the job fails with the reason
PLACEMENT_WAIT_SECONDS = float(os.environ.get("OPENAML_RAY_PLACEMENT_WAIT", "120"))
GRACE_SECONDS = 5.0


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


class Instance:
    """One instance of a distributed job: a Ray actor in one bundle of the job's placement group."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def info(self, nports: int) -> dict[str, Any]:
        import ray

        node_id = ray.get_runtime_context().get_node_id()
        # the address the node was started with (--node-ip-address), as the other nodes reach it
        ip = next((str(n["NodeManagerAddress"]) for n in ray.nodes() if n.get("NodeID") == node_id),
                  ray.util.get_node_ip_address())
        return {"ip": ip, "node_id": node_id, "ports": free_ports(nports), "pid": os.getpid()}

    def start(self, procs: list[dict[str, Any]]) -> dict[int, int]:
        """Start ``procs`` (``rank``, ``argv``, ``env``, ``cwd``, ``log``); their pids by rank.

        Raises:
            RuntimeError: this node does not see the job's folder.
        """
        for p in procs:
            if not Path(p["cwd"]).is_dir():
                import ray

                raise RuntimeError(
                    f"instance {self.index}'s node ({ray.get_runtime_context().get_node_id()}) does not see the job's folder "
                    f"{p['cwd']}: a distributed job on a Ray cluster of several hosts needs the runner's folder on a "
                    "disk every node shares")
            with open(p["log"], "ab", buffering=0) as log:
                self.procs[int(p["rank"])] = subprocess.Popen(
                    p["argv"], cwd=p["cwd"], env=p["env"], stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
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
        infos = ray.get([a.info.remote(16) for a in actors], timeout=PLACEMENT_WAIT_SECONDS)
        hosts = [str(x["ip"]) for x in infos]
        for i, x in enumerate(infos):
            runner.userlog(f"[openaml] instance {i} on Ray node {x['node_id']} ({x['ip']})")
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
            per_actor[node].append({"rank": p.rank, "argv": runner.wrap_command(p.command, penv), "env": penv,
                                    "cwd": str(wd), "log": str(p.log)})
            labels[p.rank] = p.label
        sources = {f"rank {r}": path for r, path in launch.rank_logs.items()} if launch.mpi else \
            {f"rank {p.rank}": p.log for p in launch.processes}
        if launch.mpi:
            sources["mpirun"] = launch.processes[0].log
        combiner = Combiner(sources, runner.log_path)
        combiner.start()
        try:
            ray.get([a.start.remote(per_actor[i]) for i, a in enumerate(actors) if per_actor[i]], timeout=120)
        except Exception as exc:  # noqa: BLE001 - a node that cannot start its ranks (no shared folder)
            runner.rank_error = _cause(exc)
            return 1
        runner.update(status="Running", start_time=time.time())
        return _follow(runner, launch, actors, infos, labels)
    finally:
        if actors:
            with contextlib.suppress(Exception):
                ray.get([a.stop.remote() for a in actors], timeout=GRACE_SECONDS + 15)
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


def _follow(runner: Runner, launch: Any, actors: list[Any], infos: list[dict[str, Any]],
            labels: dict[int, str]) -> int:
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
