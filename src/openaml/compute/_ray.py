"""Ray backend: each job's runner is a Ray job of an existing cluster (an openaml extension).

A compute of ``type: ray`` names the cluster's Jobs API (``address``, the dashboard's URL such as
``http://127.0.0.1:8265``), optional ``runtime_env`` defaults and the resources one runner reserves
(``resources``: ``num_cpus``, ``num_gpus``, ``memory``, ``custom``). :meth:`RayBackend.submit`
submits ``python -m openaml.runner --server URL --job NAME --work-dir DIR`` through
``ray.job_submission.JobSubmissionClient`` with those resources as the entrypoint's
(``entrypoint_num_cpus``...): Ray places it on a node that has them and the runner then works as a
local one does (spec, reports, logs and outputs over HTTP with the job's token: the server is its
only link). A node that sees the server's workspace folder (one machine, or a shared disk) reads
and writes its datastore paths itself; elsewhere code, inputs and outputs go over HTTP and the
job's environment is built in the node's own cache (``$OPENAML_RUNNER_ENVS``).

The job's token: never in the entrypoint (argv, Ray's job list) nor in ``runtime_env`` (Ray's
dashboard shows a job's ``env_vars``). It travels in a file of a one-job ``working_dir`` package
that ``JobSubmissionClient`` uploads to the cluster (the job list shows only the package's
``gcs://_ray_pkg_<hash>.zip`` URI); the entrypoint opens it as the runner's stdin and deletes it
before the runner starts. The residual exposure: whoever can run code on the cluster (Ray's Jobs
API has no authentication by default) can read the package from Ray's storage until Ray
garbage-collects it; the token is refused by the server once its job ended, and such a party can
read any runner's memory on its node anyway, so the cluster must be trusted as the server's own
machine is (docs/guide/compute.md).

Ray job status -> :class:`RunnerStatus`: PENDING/RUNNING alive; SUCCEEDED, or FAILED with the
entrypoint's exit code, exited; STOPPED (a cancel or a kill) and FAILED otherwise (its node died,
its supervisor was lost) lost, with Ray's message as the last line of :meth:`RayBackend.logs`.
A cluster that cannot be reached: :meth:`RayBackend.status` answers ALIVE (it never raises; the
scheduler's heartbeat timeout decides) and :meth:`RayBackend.submit` raises
:class:`~openaml.compute.ComputeUnavailable` naming the compute, its address and why (connection
refused, timed out...): the scheduler keeps the job Queued with that reason and submits it when
the cluster answers again. A cluster that answers and refuses the job fails it with Ray's reason.

A distributed job (``pytorch``/``tensorflow``/``mpi``, or ``instance_count`` > 1) reserves nothing
for its runner, which places the instances itself on a placement group of the compute's
``resources`` per instance (:mod:`openaml.runner._ray_nodes`), spread over the nodes as the job's
``resources.properties.placement`` or the compute's ``placement`` says.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx

from openaml.compute._base import ComputeBackend, ComputeUnavailable, JobHandle, JobSpec, RunnerStatus

__all__ = ["RayBackend", "TOKEN_FILE", "check_cluster", "runtime_env_of", "is_distributed", "bundle_of",
           "placement_of", "placement_problem"]

TOKEN_FILE = ".openaml-runner-token"
#: seconds Ray waits between a stop's SIGTERM and its SIGKILL (the scheduler's cancel grace)
STOP_WAIT_SECONDS = 15
#: how long a Ray job status is reused (the scheduler asks every pass, 20 times a second when busy)
STATUS_TTL_SECONDS = 1.0
#: how long a cluster that could not be reached is not tried again (its error is raised at once)
RETRY_SECONDS = 5.0
_ALIVE = {"PENDING", "RUNNING"}
_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def runtime_env_of(compute: dict[str, Any]) -> dict[str, Any]:
    """The compute's ``runtime_env`` defaults (a copy; ``{}`` when none)."""
    env = compute.get("runtime_env") or {}
    return json.loads(json.dumps(env)) if isinstance(env, dict) else {}


def entrypoint_resources(compute: dict[str, Any]) -> dict[str, Any]:
    """``submit_job`` keyword arguments for one runner's reservation (``resources`` of the compute)."""
    res = compute.get("resources") or {}
    out: dict[str, Any] = {"entrypoint_num_cpus": float(res.get("num_cpus", 1.0))}
    if res.get("num_gpus"):
        out["entrypoint_num_gpus"] = float(res["num_gpus"])
    if res.get("memory"):
        out["entrypoint_memory"] = int(res["memory"])
    if res.get("custom"):
        out["entrypoint_resources"] = {str(k): float(v) for k, v in res["custom"].items()}
    return out


def is_distributed(distribution: dict[str, Any] | None, resources: dict[str, Any] | None) -> bool:
    """Whether a job runs as instances on a placement group: a ``pytorch``, ``tensorflow`` or ``mpi``
    distribution, or ``instance_count`` > 1 without one (``ray`` jobs use the cluster itself)."""
    kind = (distribution or {}).get("type")
    if kind == "ray":
        return False
    return kind in ("pytorch", "tensorflow", "mpi") or int((resources or {}).get("instance_count") or 1) > 1


def bundle_of(compute: dict[str, Any]) -> dict[str, float]:
    """One instance's placement group bundle (the compute's ``resources``: ``{"CPU": 1, "worker": 1}``)."""
    res = compute.get("resources") or {}
    out = {"CPU": float(res.get("num_cpus", 1.0))}
    if res.get("num_gpus"):
        out["GPU"] = float(res["num_gpus"])
    if res.get("memory"):
        out["memory"] = float(res["memory"])
    out.update({str(k): float(v) for k, v in (res.get("custom") or {}).items()})
    return out


def placement_of(compute: dict[str, Any], resources: dict[str, Any] | None) -> str:
    """The job's placement (``spread``, ``strict_spread``, ``pack``): the job's
    ``resources.properties.placement``, else the compute's ``placement``, else ``spread``."""
    props = (resources or {}).get("properties") or {}
    chosen = props.get("placement") if isinstance(props, dict) else None
    return str(chosen or compute.get("placement") or "spread").lower()


def placement_problem(compute: dict[str, Any], instances: int, placement: str,
                      timeout: float = 10.0, *, runner_only: bool = False) -> str | None:
    """Why the cluster of ``compute`` cannot place ``instances`` bundles with ``placement`` now
    (``strict_spread``: that many live nodes each holding one bundle; ``spread``/``pack``: that many
    bundles over the live nodes), or None (it can, or the cluster does not answer: the job then
    waits Queued until it does, and its runner's placement group waits for the nodes).
    ``runner_only``: the job is not distributed (one runner of the compute's resources), said so."""
    base = str(compute.get("address") or "").rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as c:
            r = c.get(f"{base}/api/v0/nodes", params={"limit": 10000, "detail": "true"})
            live = [n for n in r.json()["data"]["result"]["result"] if n.get("state") == "ALIVE"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    bundle = bundle_of(compute)
    fits = []
    for node in live:
        total = node.get("resources_total") or {}
        fits.append(min(int(float(total.get(k, 0.0)) // v) for k, v in bundle.items() if v > 0))
    hosts = sum(1 for f in fits if f >= 1)
    if placement == "strict_spread" and hosts < instances:
        return (f"resources.instance_count {instances} with placement strict_spread needs {instances} distinct Ray "
                f"nodes that each hold one instance ({bundle}), but the cluster at {base} has {hosts} (of "
                f"{len(live)} live node(s)); lower instance_count, add nodes, or use placement spread")
    if sum(fits) < instances:
        if runner_only:
            return (f"one runner of {bundle} does not fit the Ray cluster at {base}: its {len(live)} live node(s) "
                    f"hold {sum(fits)}; add a node that has them, or create compute {compute.get('name')!r} again "
                    "with resources a live node holds (openaml compute create --file <compute.yml>)")
        return (f"resources.instance_count {instances} instances of {bundle} do not fit the Ray cluster at {base}: "
                f"its {len(live)} live node(s) hold {sum(fits)}; lower instance_count or add nodes")
    return None


def check_cluster(name: str, address: str, resources: dict[str, Any] | None = None,
                  timeout: float = 10.0) -> int:
    """Check that the Ray Jobs API at ``address`` answers; returns how many runners of ``resources``
    its live nodes hold at once (CPUs, GPUs and custom resources divided by one runner's; at least 1).

    Raises:
        ValidationError: the Jobs API does not answer (naming the compute, the address and the error).
    """
    from openaml.errors import ValidationError

    base = address.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as c:
            version = c.get(f"{base}/api/version")
            version.raise_for_status()
            if "ray_version" not in version.json():
                raise ValueError(f"{base}/api/version is not a Ray dashboard's answer")
            nodes = c.get(f"{base}/api/v0/nodes", params={"limit": 10000, "detail": "true"})
    except (httpx.HTTPError, ValueError) as exc:
        raise ValidationError(
            f"compute {name!r}: the Ray Jobs API at {address} does not answer ({type(exc).__name__}: {exc}); start the "
            "cluster (ray start --head --dashboard-host ...) or fix 'address' (the dashboard's URL, port 8265 by "
            "default). Nothing was stored.", details={"compute": name, "field": "address", "value": address}) from None
    totals: dict[str, float] = {}
    try:
        for node in nodes.json()["data"]["result"]["result"]:
            if node.get("state") == "ALIVE":
                for k, v in (node.get("resources_total") or {}).items():
                    totals[k] = totals.get(k, 0.0) + float(v)
    except (ValueError, KeyError, TypeError):
        return 1  # an older dashboard without the state API: one runner at a time unless max_instances is given
    res = resources or {}
    wanted = {"CPU": float(res.get("num_cpus", 1.0)), "GPU": float(res.get("num_gpus") or 0.0),
              **{str(k): float(v) for k, v in (res.get("custom") or {}).items()}}
    fits = [int(totals.get(k, 0.0) // v) for k, v in wanted.items() if v > 0]
    return max(1, min(fits)) if fits else 1


class RayBackend(ComputeBackend):
    """Runners as Ray jobs. Its handle is ``{"address": ..., "submission_id": ...}``: any instance
    (a restarted server) follows and stops the job through the cluster's Jobs API."""

    name = "ray"

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._status: dict[str, tuple[float, str, str]] = {}  # submission id -> (when, status, message)
        self._down: dict[str, tuple[float, str]] = {}  # address -> (when a connection failed, why)

    # ------------------------------------------------------------------ the cluster
    def client(self, address: str) -> Any:
        """The ``JobSubmissionClient`` of ``address`` (made once; its constructor checks the cluster).

        Raises:
            RuntimeError: the cluster's Jobs API does not answer.
        """
        with self._lock:
            made = self._clients.get(address)
            down = self._down.get(address)
        if made is not None:
            return made
        if down is not None and time.monotonic() - down[0] < RETRY_SECONDS:
            raise RuntimeError(down[1])  # the scheduler asks every pass: not a connection attempt each time
        from ray.job_submission import JobSubmissionClient

        try:
            made = JobSubmissionClient(address)
        except Exception as exc:  # noqa: BLE001 - requests' ConnectionError, Ray's RuntimeError: all "unreachable"
            msg = f"the Ray cluster at {address} does not answer ({_unreachable(exc)})"
            with self._lock:
                self._down[address] = (time.monotonic(), msg)
            raise RuntimeError(msg) from None
        with self._lock:
            self._clients[address] = made
            self._down.pop(address, None)
        return made

    def probe(self, compute: dict[str, Any]) -> None:
        """Raises :class:`ComputeUnavailable` while the cluster's Jobs API does not answer (asked at
        most every :data:`RETRY_SECONDS`)."""
        address = str(compute.get("address") or "")
        if address:
            try:
                self.client(address)
            except RuntimeError as exc:
                raise ComputeUnavailable(f"compute {compute.get('name')!r}: {exc}") from None

    @staticmethod
    def _parse(handle: JobHandle) -> tuple[str, str]:
        d = handle.data()
        return str(d.get("address") or ""), str(d.get("submission_id") or "")

    # ------------------------------------------------------------------ start
    def submit(self, spec: JobSpec) -> JobHandle:
        compute = spec.compute
        address = str(compute.get("address") or "")
        name = compute.get("name")
        if not address:
            raise RuntimeError(f"compute {name!r} of type 'ray' has no 'address'")
        try:
            client = self.client(address)
        except RuntimeError as exc:  # the Jobs API does not answer: the job waits Queued
            raise ComputeUnavailable(f"compute {name!r}: {exc}") from None
        submission_id = f"openaml-{spec.job_name}-{uuid.uuid4().hex[:8]}"
        env = runtime_env_of(compute)
        env_vars = {str(k): str(v) for k, v in (env.get("env_vars") or {}).items()}
        env_vars.setdefault("PYTHONUNBUFFERED", "1")
        env_vars["RAY_JOB_STOP_WAIT_TIME_S"] = str(STOP_WAIT_SECONDS)  # the runner's time to report Canceled
        env_vars["OPENAML_ON_RAY"] = "1"  # a ray distribution's cluster is this one (runner/_ray_cluster.py)
        env_vars["OPENAML_RUNNER_EXIT_NONZERO"] = "1"  # Ray's job list says FAILED for a job not Completed
        reserve = entrypoint_resources(compute)
        if is_distributed(spec.distribution, spec.resources):
            # the runner only drives: each instance's actor holds one bundle of the job's placement group
            from openaml.runner._ray_nodes import BUNDLE_ENV, PLACEMENT_ENV, PLACEMENTS

            reserve = {"entrypoint_num_cpus": 0.0}
            env_vars[BUNDLE_ENV] = json.dumps(bundle_of(compute))
            env_vars[PLACEMENT_ENV] = PLACEMENTS.get(placement_of(compute, spec.resources), "SPREAD")
        env["env_vars"] = env_vars
        # the token: a file of a one-job working_dir package, opened as the runner's stdin and deleted at once
        package = tempfile.mkdtemp(prefix="openaml-ray-")
        try:
            token_path = os.path.join(package, TOKEN_FILE)
            fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(spec.token + "\n")
            env["working_dir"] = package
            # the runner's folder: a temporary one of the node, removed when the runner ends (not in the job's
            # working_dir package: Ray unpacks that again, emptying it, when a driver in it calls ray.init());
            # the shell outlives Ray's stop (SIGTERM to the entrypoint and its descendants) to remove it; a folder
            # whose shell was killed (its node's raylet lost, a stop past Ray's wait) is swept by the next job's
            # entrypoint on the node: its "<folder>.pid" names a process that is gone
            runner = shlex.join(["python", "-m", "openaml.runner", "--server", spec.server_url, "--job",
                                 spec.job_name, "--work-dir"])
            entrypoint = (f'{{ rm -f {TOKEN_FILE}; {_SWEEP} d="$(mktemp -d "$t/openaml-job-XXXXXX")" || exit 1; '
                          f'echo $$ > "$d.pid"; trap \'rm -rf "$d" "$d.pid"\' EXIT; trap true TERM INT; '
                          f"{runner} \"$d\"; s=$?; rm -rf \"$d\" \"$d.pid\"; exit $s; }} < {TOKEN_FILE}")
            try:
                client.submit_job(entrypoint=entrypoint, submission_id=submission_id, runtime_env=env,
                                  metadata={"openaml_job": spec.job_name}, **reserve)
            except Exception as exc:  # noqa: BLE001 - the cluster refused (the job fails) or went away (it waits)
                if _is_connection_error(exc):
                    msg = f"the Ray cluster at {address} does not answer ({_unreachable(exc)})"
                    with self._lock:
                        self._clients.pop(address, None)
                        self._down[address] = (time.monotonic(), msg)
                    raise ComputeUnavailable(f"compute {name!r}: {msg}") from None
                raise RuntimeError(f"the Ray cluster at {address} did not take the job: {_short(exc)}") from None
        finally:
            shutil.rmtree(package, ignore_errors=True)
        return JobHandle(self.name, json.dumps({"address": address, "submission_id": submission_id}))

    # ------------------------------------------------------------------ follow
    def ray_status(self, handle: JobHandle) -> tuple[str, str]:
        """Ray's ``(status, message)`` of the handle's job (reused for :data:`STATUS_TTL_SECONDS`).

        Raises:
            RuntimeError: the cluster cannot be reached.
        """
        address, sid = self._parse(handle)
        now = time.monotonic()
        with self._lock:
            cached = self._status.get(sid)
        if cached is not None and (cached[1] in _TERMINAL or now - cached[0] < STATUS_TTL_SECONDS):
            return cached[1], cached[2]
        try:
            info = self.client(address).get_job_info(sid)
        except RuntimeError:
            raise
        except Exception as exc:  # noqa: BLE001
            if "does not exist" in str(exc):
                return "MISSING", f"the Ray cluster at {address} has no job {sid}"
            raise RuntimeError(f"the Ray cluster at {address} cannot tell job {sid}'s status: {_short(exc)}") from None
        status, message = str(info.status), str(info.message or "")
        if status == "FAILED" and info.driver_exit_code is not None:
            status = "EXITED"
        with self._lock:
            self._status[sid] = (now, status, message)
        return status, message

    def status(self, handle: JobHandle) -> RunnerStatus:
        """ALIVE, EXITED or LOST; never raises (the port's contract): a cluster that cannot be
        reached answers ALIVE, and the runner's heartbeat timeout decides (a runner that still
        reports is alive; one whose node is gone stops reporting)."""
        try:
            status, _ = self.ray_status(handle)
        except Exception:  # noqa: BLE001 - the port's contract: never raises; the runner's heartbeat decides
            return RunnerStatus.ALIVE
        if status.endswith("PENDING") or status.endswith("RUNNING") or status in _ALIVE:
            return RunnerStatus.ALIVE
        if status.endswith(("SUCCEEDED", "EXITED")):
            return RunnerStatus.EXITED
        return RunnerStatus.LOST

    def logs(self, handle: JobHandle, max_bytes: int = 4096) -> str:
        """The end of the Ray job's output; when Ray ended it (a node lost, a stop) Ray's message is the last line."""
        address, sid = self._parse(handle)
        try:
            status, message = self.ray_status(handle)
        except Exception:  # noqa: BLE001 - a failure message is best effort
            status, message = "", ""
        try:  # kept by the node that ran the job: gone with a lost node
            text = str(self.client(address).get_job_logs(sid) or "")[-max_bytes:]
        except Exception:  # noqa: BLE001
            text = ""
        if status.endswith(("FAILED", "STOPPED", "MISSING")) and message:
            text += ("" if not text or text.endswith("\n") else "\n") + f"[ray] job {sid} {status}: {message}\n"
        return text

    def capacity(self, compute: dict[str, Any]) -> int:
        return max(0, int(compute.get("max_instances") or 0))

    # ------------------------------------------------------------------ stop
    def cancel(self, handle: JobHandle) -> None:
        """Ray's ``stop_job``: SIGTERM to the runner (it stops the command and reports Canceled),
        SIGKILL after :data:`STOP_WAIT_SECONDS`. No effect on an ended job or an unreachable cluster."""
        self._stop(handle)

    def kill(self, handle: JobHandle) -> None:
        """Ray's ``stop_job`` too (the Jobs API has no immediate kill): the runner gets SIGTERM and
        then SIGKILL; a report it still sends is refused when the scheduler already ended the job."""
        self._stop(handle)

    def _stop(self, handle: JobHandle) -> None:
        address, sid = self._parse(handle)
        try:
            self.client(address).stop_job(sid)
        except Exception:  # noqa: BLE001 - gone already, or unreachable: nothing to stop from here
            return
        with self._lock:
            self._status.pop(sid, None)


#: the entrypoint's sweep of the node's runner folders left by entrypoints that were killed (``$t``: the
#: temporary folder); a folder without its ``.pid`` file (being created, or by an older openaml) is kept
_SWEEP = ('t="${TMPDIR:-/tmp}"; for f in "$t"/openaml-job-*.pid; do [ -f "$f" ] || continue; '
          'p="$(cat "$f" 2>/dev/null)"; case "$p" in ""|*[!0-9]*) continue;; esac; '
          'kill -0 "$p" 2>/dev/null || rm -rf "${f%.pid}" "$f"; done;')


def _is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (from Ray's client: requests, urllib3) says the cluster could not be reached,
    as opposed to a cluster that answered and refused."""
    import requests

    seen: BaseException | None = exc
    for _ in range(5):  # the exception and what it was raised from
        if seen is None:
            break
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError,
                             TimeoutError)):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return any(k in text for k in ("Failed to connect", "Max retries exceeded", "Connection refused"))


#: what a connection error says, as a few words (not urllib3's pool and URL text)
def _unreachable(exc: BaseException) -> str:
    """Why a cluster could not be reached, in a few words (``connection refused``): Ray's "Failed to
    connect to Ray at address ..." wraps requests' error, which says why."""
    from openaml.errors import unreachable_reason

    return unreachable_reason(exc) or ("no connection" if "Failed to connect" in str(exc) else _short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
