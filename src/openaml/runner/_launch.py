"""The processes of a distributed job (spec sections 2.4 and 14.2) on one machine.

:func:`plan_processes` turns a job's ``distribution`` and ``resources.instance_count`` into the
processes to start, each with the variables Azure ML gives it:

- ``pytorch``: ``instance_count`` x ``process_count_per_instance`` processes (per-process launch),
  each with ``MASTER_ADDR`` (127.0.0.1), ``MASTER_PORT`` (a free port), ``WORLD_SIZE``, ``RANK``,
  ``LOCAL_RANK``, ``NODE_RANK``, ``LOCAL_WORLD_SIZE`` (and, as ``torchrun`` sets it for several
  processes per node, ``OMP_NUM_THREADS=1`` unless the job sets it); a command that starts its own launcher
  (``torchrun``, ``python -m torch.distributed.launch``/``.run``: per-node launch) runs once per
  instance, with the node's variables (``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``,
  ``AZUREML_NODE_COUNT``), and starts the node's processes itself.
- ``tensorflow``: ``worker_count`` workers and ``parameter_server_count`` parameter servers, each
  with ``TF_CONFIG`` (``cluster.worker``/``cluster.ps`` as loopback ``host:port``, ``task.type``,
  ``task.index``, ``environment: cloud``).
- ``mpi``: one ``mpirun`` (Debian's Open MPI; ``--allow-run-as-root`` as root, ``--oversubscribe``,
  ``--bind-to none``) that starts ``instance_count`` x ``process_count_per_instance`` ranks; Open
  MPI sets ``OMPI_COMM_WORLD_*``; each rank writes its own log and leaves its exit code for the
  runner (:data:`RANK_SCRIPT`).
- no distribution with ``instance_count`` > 1: the command once per instance, with the node's
  variables (as Azure runs it on each node).

Every process also gets ``AZUREML_PROCESS_NAME`` (``rank_<n>``), ``AZUREML_CR_NODE_RANK``,
``AZ_BATCH_NODE_ID``, ``AZ_BATCH_HOST_LIST`` (one ``127.0.0.1`` per instance),
``AZ_BATCH_MASTER_NODE`` (``ip:port``) and ``AZ_BATCHAI_MPI_MASTER_NODE``. The instances of a job
on local compute are processes of this machine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RankProcess", "Launch", "plan_processes", "free_ports", "Combiner", "per_node_launch",
           "MPIRUN_MISSING", "mpi_failed_rank"]

LOOPBACK = "127.0.0.1"
MPIRUN_MISSING = ("'mpirun' (Open MPI) is not installed on this machine, so an mpi job cannot start; install it "
                  "(Debian/Ubuntu: apt-get install openmpi-bin)")
_LAUNCHER = re.compile(r"(^|[\s/;&|(])torchrun(\s|$)|torch\.distributed\.(launch|run)\b")
# run by each MPI rank: its output to its own log, its exit code where the runner finds it
#: an mpi rank's wrapper: its process name and node rank (rank // process_count_per_instance, as on
#: Azure's instances; mpirun's ``-x`` cannot set a variable per rank), its own log and exit code
RANK_SCRIPT = ('r="${OMPI_COMM_WORLD_RANK:-0}"; export AZUREML_PROCESS_NAME="rank_$r"; '
               'export AZUREML_CR_NODE_RANK="$((r / ${OPENAML_RANKS_PER_NODE:-1}))"; '
               'export AZ_BATCH_NODE_ID="${OPENAML_NODE_ID_PREFIX}$AZUREML_CR_NODE_RANK"; '
               'bash -c "$0" >>"$OPENAML_RANK_LOGS/std_log_process_$r.txt" 2>&1; s=$?; '
               'echo "$s" >"$OPENAML_RANK_STATE/exit_$r"; exit "$s"')


@dataclass
class RankProcess:
    """One process to start: ``rank`` (its number in the job's logs and errors), ``env`` (the
    variables added to the job's environment), ``log`` (its own log file), ``command`` (the shell
    command it runs) and ``label`` (how the job's error names it: ``rank 1``)."""

    rank: int
    env: dict[str, str]
    log: Path
    command: str
    label: str


@dataclass
class Launch:
    """The processes of one job; ``mpi``: the only process is ``mpirun`` (its ranks' logs are
    ``rank_logs``); ``notes``: lines for the top of the job's log."""

    kind: str
    processes: list[RankProcess]
    mpi: bool = False
    rank_logs: dict[int, Path] = field(default_factory=dict)
    state_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


def per_node_launch(command: str) -> bool:
    """Whether ``command`` starts PyTorch's own launcher (``torchrun``,
    ``python -m torch.distributed.launch``/``torch.distributed.run``)."""
    return bool(_LAUNCHER.search(command))


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on the loopback interface now (bound together, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def plan_processes(spec: dict[str, Any], command: str, log_dir: Path, state_dir: Path,
                   hosts: list[str] | None = None, ports: Callable[[int], list[int]] | None = None) -> Launch | None:
    """The processes of the job of ``spec`` (the runner's spec) running ``command``, or None for a
    plain single-process job (no distribution, one instance). ``hosts``: each instance's address
    (default: ``127.0.0.1`` for all, the instances of local compute; on a Ray compute the IPs of
    the nodes its placement group chose, :mod:`openaml.runner._ray_nodes`), ``hosts[0]`` being
    ``MASTER_ADDR``; ``ports(n)``: ``n`` free ports of instance 0 (default :func:`free_ports`).

    Raises:
        RuntimeError: ``mpi`` without ``mpirun`` on this machine; ``ray`` (not run on local compute).
    """
    dist = spec.get("distribution") or None
    nodes = max(1, int((spec.get("resources") or {}).get("instance_count") or 1))
    if dist is None and nodes == 1:
        return None
    kind = (dist or {}).get("type") or "none"
    compute = str(spec.get("compute") or "local")
    addrs = list(hosts) if hosts else [LOOPBACK] * nodes
    master = addrs[0]
    get_ports = ports or free_ports
    host_list = ",".join(addrs)

    def common(rank: int, node: int, port: int) -> dict[str, str]:
        return {"AZUREML_NODE_COUNT": str(nodes), "AZUREML_CR_NODE_RANK": str(node),
                "AZUREML_PROCESS_NAME": f"rank_{rank}", "AZ_BATCH_NODE_ID": f"{compute}-{node}",
                "AZ_BATCH_HOST_LIST": host_list, "AZ_BATCH_MASTER_NODE": f"{master}:{port}",
                "AZ_BATCHAI_MPI_MASTER_NODE": master}

    def proc(rank: int, env: dict[str, str], label: str | None = None, cmd: str = command) -> RankProcess:
        return RankProcess(rank, env, log_dir / f"std_log_process_{rank}.txt", cmd, label or f"rank {rank}")

    if kind == "ray":
        raise RuntimeError("distribution type 'ray' runs on a Ray compute only, not on local compute")
    if kind == "tensorflow":
        workers = int(dist.get("worker_count") or nodes)  # type: ignore[union-attr]
        ps = int(dist.get("parameter_server_count") or 0)  # type: ignore[union-attr]
        tf_ports = get_ports(workers + ps)
        # task r runs on instance r % instance_count (its address in the cluster spec)
        cluster: dict[str, list[str]] = {"worker": [f"{addrs[i % nodes]}:{p}" for i, p in enumerate(tf_ports[:workers])]}
        if ps:
            cluster["ps"] = [f"{addrs[(workers + i) % nodes]}:{p}" for i, p in enumerate(tf_ports[workers:])]
        tasks = [("worker", i) for i in range(workers)] + [("ps", i) for i in range(ps)]
        out = []
        for rank, (task, index) in enumerate(tasks):
            env = common(rank, rank % nodes, tf_ports[0])
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": task, "index": index},
                                           "environment": "cloud"})
            out.append(proc(rank, env, f"rank {rank} ({task} {index})"))
        return Launch(kind, out)
    per_node = int((dist or {}).get("process_count_per_instance") or 1)
    port = get_ports(1)[0]
    if kind == "mpi":
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            raise RuntimeError(MPIRUN_MISSING)
        total = nodes * per_node
        argv = [mpirun, "--oversubscribe", "--bind-to", "none", "-np", str(total)]
        if os.geteuid() == 0:
            argv.insert(1, "--allow-run-as-root")
        argv += ["bash", "-c", RANK_SCRIPT, command]
        env = common(0, 0, port)
        env.pop("AZUREML_PROCESS_NAME")
        env.update({"OPENAML_RANK_LOGS": str(log_dir), "OPENAML_RANK_STATE": str(state_dir),
                    "OPENAML_RANKS_PER_NODE": str(per_node), "OPENAML_NODE_ID_PREFIX": f"{compute}-"})
        # in a container Open MPI's shared-memory single copy (CMA) needs ptrace rights it rarely has
        env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        launcher = RankProcess(0, env, log_dir / "mpirun.txt", shlex.join(argv), "mpirun")
        logs = {r: log_dir / f"std_log_process_{r}.txt" for r in range(total)}
        return Launch(kind, [launcher], mpi=True, rank_logs=logs, state_dir=state_dir)
    launch = Launch(kind, [])
    if kind == "none" or (kind == "pytorch" and per_node_launch(command)):
        # one process per instance: the command itself, or PyTorch's launcher that starts the node's processes
        for node in range(nodes):
            env = common(node, node, port)
            env.update({"MASTER_ADDR": master, "MASTER_PORT": str(port), "NODE_RANK": str(node)})
            if kind == "pytorch":
                env.update({"WORLD_SIZE": str(nodes), "RANK": str(node), "LOCAL_RANK": "0",
                            "LOCAL_WORLD_SIZE": "1"})
            launch.processes.append(proc(node, env, f"rank {node} (instance {node})"))
        if kind == "pytorch":
            launch.notes.append(f"per-node launch: the command starts PyTorch's launcher, so it runs once on each "
                                f"of {nodes} instance(s) with NODE_RANK, MASTER_ADDR and MASTER_PORT={port}; "
                                f"pass --nproc_per_node {per_node} to it for {per_node} process(es) per instance")
        else:
            launch.notes.append(f"resources.instance_count={nodes} without a distribution: the command runs once on "
                                f"each instance (processes of this machine), with AZUREML_CR_NODE_RANK")
        return launch
    world = nodes * per_node
    # as torchrun does for several processes per node: one OpenMP thread each unless the job says otherwise
    # (without it the ranks' OpenMP threads fight for the cores: DDP on CPU ran at 0.3x torchrun's speed)
    threads = {} if per_node == 1 or "OMP_NUM_THREADS" in (spec.get("environment_variables") or {}) \
        or "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": "1"}
    for node in range(nodes):
        for local in range(per_node):
            rank = node * per_node + local
            env = common(rank, node, port)
            env.update({"MASTER_ADDR": master, "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                        "RANK": str(rank), "LOCAL_RANK": str(local), "NODE_RANK": str(node),
                        "LOCAL_WORLD_SIZE": str(per_node), "GROUP_RANK": str(node), **threads})
            launch.processes.append(proc(rank, env))
    return launch


def mpi_failed_rank(state_dir: Path) -> tuple[int, int] | None:
    """``(rank, exit code)`` of the MPI rank that failed first (its exit file written first), or None."""
    found: list[tuple[float, int, int]] = []
    for f in state_dir.glob("exit_*"):
        try:
            code = int(f.read_text().strip() or 0)
            if code != 0:
                found.append((f.stat().st_mtime, int(f.name[5:]), code))
        except (OSError, ValueError):
            continue
    if not found:
        return None
    _, rank, code = min(found)
    return rank, code


class Combiner:
    """Copies the complete lines that per-process logs gain into the job's combined log, each
    prefixed with its process (``[rank 1] ...``), every ``period`` seconds in a thread, and the
    rest (a last line without its newline too) at :meth:`stop`."""

    def __init__(self, sources: dict[str, Path], out: Path, period: float = 0.2) -> None:
        self.sources = sources
        self.out = out
        self.period = period
        self.offsets = {k: 0 for k in sources}
        self.partial = {k: b"" for k in sources}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="log-combiner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.pump()

    def pump(self, final: bool = False) -> None:
        chunks: list[bytes] = []
        for name, path in self.sources.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets[name])
                    data = fh.read()
            except OSError:
                continue
            if not data and not (final and self.partial[name]):
                continue
            self.offsets[name] += len(data)
            data = self.partial[name] + data
            lines = data.split(b"\n")
            self.partial[name] = lines.pop()
            if final and self.partial[name]:
                lines.append(self.partial[name])
                self.partial[name] = b""
            prefix = f"[{name}] ".encode()
            chunks.extend(prefix + line + b"\n" for line in lines)
        if chunks:
            with open(self.out, "ab") as fh:
                fh.write(b"".join(chunks))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.pump(final=True)


def wait_any(pids: dict[int, int], seconds: float) -> None:
    """Sleep until one of the processes (``pidfd`` per pid) exits, or ``seconds`` pass."""
    import select

    fds = [fd for fd in pids.values() if fd >= 0]
    if not fds:
        time.sleep(seconds)
        return
    select.select(fds, [], [], seconds)
