"""Managed online endpoints and deployments (spec section 10): state, keys, traffic, workers.

Endpoints and deployments live in the metadata store; workers are run by the
:class:`~openaml.serving._supervisor.Supervisor`. The scoring router asks :meth:`route` for an
endpoint's in-memory routing table (keys, traffic, mirror, worker sockets), rebuilt on every change so
traffic changes apply without restarting a worker or dropping a request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._endpoint import (
    DeploymentState,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    MicroBatching,
    OnlineRequestSettings,
    ProbeSettings,
    check_traffic,
)
from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError
from openaml.records import DeploymentRecord, EndpointKeysRecord, EndpointRecord
from openaml.services._context import WorkspaceContext
from openaml.services.rai_gate import RaiGateService
from openaml.serving._supervisor import InitFailed, LaunchSpec, Supervisor
from openaml.store import EndpointRepository

__all__ = ["TOKEN_TTL_S", "EndpointService", "RouteTable"]

TOKEN_TTL_S = 3600.0


@dataclass
class DeploymentRoute:
    name: str
    key: str
    settings: OnlineRequestSettings


@dataclass
class RouteTable:
    """What the router needs for one endpoint, without touching the database."""

    name: str
    auth_mode: str
    keys: tuple[str, ...]
    token_secret: bytes
    traffic: list[tuple[str, int]]
    mirror: list[tuple[str, int]]
    deployments: dict[str, DeploymentRoute] = field(default_factory=dict)


def _key(endpoint: str, deployment: str) -> str:
    return f"{endpoint}/{deployment}"


class EndpointService:
    """Use cases of online endpoints and deployments."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self.repo = EndpointRepository(ctx.store)
        self.supervisor = Supervisor(on_event=self._event)
        self._routes: dict[str, RouteTable] = {}
        self._lock = threading.RLock()
        self._threads: dict[str, threading.Thread] = {}

    @property
    def root(self) -> Path:
        return self.ctx.layout.root / "endpoints"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the supervisor and bring back the workers of every deployment (server restart)."""
        self.supervisor.start()
        for ep in self.repo.list_endpoints():
            self._refresh(ep["name"])
            for dep in self.repo.list_deployments(ep["name"]):
                if dep["provisioning_state"] in (DeploymentState.SUCCEEDED, DeploymentState.CREATING,
                                                 DeploymentState.UPDATING):
                    self._provision(ep["name"], dep["name"], DeploymentState.CREATING)

    def stop(self) -> None:
        self.supervisor.stop()

    # ------------------------------------------------------------------ endpoints
    def _endpoint_view(self, ep: dict[str, Any]) -> EndpointRecord:
        name = ep["name"]
        base = f"{self.ctx.url}/endpoints/{name}"
        return {**ep["spec"], "name": name, "provisioning_state": ep["provisioning_state"],
                "scoring_uri": f"{base}/score", "swagger_uri": f"{base}/swagger.json",
                "openapi_uri": f"{base}/swagger.json", "id": self._id(name),
                "creation_context": {"created_at": ep["created_at"].isoformat(),
                                     "last_modified_at": ep["updated_at"].isoformat()}}

    def _id(self, name: str, deployment: str | None = None) -> str:
        rid = (f"/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/"
               f"workspaces/{self.ctx.workspace_name}/onlineEndpoints/{name}")
        return rid + (f"/deployments/{deployment}" if deployment else "")

    def _on_leader(self) -> None:
        """Online endpoints are served by the server that leads the workspace (its workers, its
        routing table): a standby server of a shared (PostgreSQL) workspace refuses their changes.

        Raises:
            ConflictError: naming the leading server to send the request to.
        """
        work = self.ctx.services.get("background")
        if work is not None and not work.leading:
            leader = work.leader_url()
            raise ConflictError(
                "online endpoints of this workspace are served by the server that leads it"
                f"{' (' + leader + ')' if leader else ' (none right now: retry in a few seconds)'}; "
                "this server stands by: send endpoint and deployment changes there")

    def create_or_update_endpoint(self, spec: dict[str, Any]) -> EndpointRecord:
        """Create the endpoint, or update description, tags, auth_mode, traffic and mirror_traffic.

        Raises:
            ValidationError: bad fields; traffic not totalling 100 or 0 (the sums shown); traffic
                to a deployment that does not exist; mirror over 50 %.
        """
        self._on_leader()
        ep = self._validate(ManagedOnlineEndpoint, spec, "online endpoint")
        data = ep.model_dump(mode="json", exclude_none=True, exclude=set(ManagedOnlineEndpoint._server_fields))
        try:
            current = self.repo.get_endpoint(ep.name)
        except NotFoundError:
            current = None
        if current is None:
            self._check_traffic(ep.name, ep.traffic, ep.mirror_traffic, existing=set())
            auth = {"primary_key": _new_key(), "secondary_key": _new_key(), "token_secret": _new_key()}
            self.repo.create_endpoint(ep.name, data, auth, DeploymentState.SUCCEEDED)
        else:
            fields = set(spec) & set(ManagedOnlineEndpoint.model_fields)
            merged = {**current["spec"], **{k: v for k, v in data.items() if k in fields}}
            names = {d["name"] for d in self.repo.list_deployments(ep.name)}
            self._check_traffic(ep.name, merged.get("traffic", {}), merged.get("mirror_traffic", {}), existing=names,
                                named={k for f in ("traffic", "mirror_traffic") if f in fields for k in (data.get(f) or {})})
            self.repo.update_endpoint(ep.name, lambda _e: {"spec": merged})
        self._refresh(ep.name)
        return self.get_endpoint(ep.name)

    def _check_traffic(self, name: str, traffic: dict[str, int], mirror: dict[str, int], existing: set[str],
                       named: set[str] | None = None) -> None:
        """``named``: the deployments this update's traffic names; one of them that the endpoint does
        not have is refused even at 0 % (Azure ML refuses traffic for an unknown deployment)."""
        problems = check_traffic(traffic, mirror)
        unknown = sorted(k for k, v in {**traffic, **mirror}.items()
                         if (v or k in (named or set())) and k not in existing)
        if unknown:
            problems.append(f"traffic names deployment(s) {unknown} that endpoint {name!r} does not have "
                            f"(its deployments: {sorted(existing) or 'none'})")
        if problems:
            raise ValidationError(f"online endpoint {name!r}: " + "; ".join(problems),
                                  details={"field": "traffic", "traffic": traffic, "mirror_traffic": mirror})

    def get_endpoint(self, name: str) -> EndpointRecord:
        return self._endpoint_view(self.repo.get_endpoint(name))

    def list_endpoints(self) -> list[EndpointRecord]:
        return [self._endpoint_view(e) for e in self.repo.list_endpoints()]

    def delete_endpoint(self, name: str) -> None:
        """Stop every deployment's workers and delete the endpoint."""
        self._on_leader()
        self.repo.get_endpoint(name)
        self.repo.update_endpoint(name, lambda _e: {"provisioning_state": DeploymentState.DELETING})
        for dep in self.repo.list_deployments(name):
            self.supervisor.stop_deployment(_key(name, dep["name"]))
        self.repo.delete_endpoint(name)
        with self._lock:
            self._routes.pop(name, None)
        _remove_tree(self.root / name)  # logs, laid-out model, sockets: a new endpoint of that name starts clean

    # ------------------------------------------------------------------ keys and tokens
    def get_keys(self, name: str) -> EndpointKeysRecord:
        """``{primary_key, secondary_key}`` (key auth) or ``{access_token, expiry_time_utc, ...}``."""
        ep = self.repo.get_endpoint(name)
        if ep["spec"].get("auth_mode", "key") == "key":
            return {"primary_key": ep["auth"]["primary_key"], "secondary_key": ep["auth"]["secondary_key"]}
        now = time.time()
        return {"access_token": make_token(name, ep["auth"]["token_secret"].encode(), now + TOKEN_TTL_S),
                "expiry_time_utc": now + TOKEN_TTL_S, "refresh_after_time_utc": now + TOKEN_TTL_S / 2,
                "token_type": "Bearer"}

    def regenerate_keys(self, name: str, key_type: str = "primary") -> EndpointKeysRecord:
        """Raises ValidationError for a key type other than primary/secondary or a token endpoint."""
        self._on_leader()
        kt = key_type.lower()
        if kt not in ("primary", "secondary"):
            raise ValidationError(f"key_type {key_type!r} is invalid; use primary or secondary",
                                  details={"field": "key_type", "value": key_type})
        ep = self.repo.get_endpoint(name)
        if ep["spec"].get("auth_mode", "key") != "key":
            raise ValidationError(f"online endpoint {name!r} uses auth_mode {ep['spec'].get('auth_mode')}; only key "
                                  "endpoints have keys to regenerate")
        self.repo.update_endpoint(name, lambda e: {"auth": {**e["auth"], f"{kt}_key": _new_key()}})
        self._refresh(name)
        return self.get_keys(name)

    # ------------------------------------------------------------------ deployments
    def _dep_view(self, dep: dict[str, Any]) -> DeploymentRecord:
        return {**dep["spec"], "name": dep["name"], "endpoint_name": dep["endpoint_name"],
                "provisioning_state": dep["provisioning_state"], "error": dep["error"],
                "id": self._id(dep["endpoint_name"], dep["name"]),
                "scoring_uri": f"{self.ctx.url}/endpoints/{dep['endpoint_name']}/score",
                "creation_context": {"created_at": dep["created_at"].isoformat(),
                                     "last_modified_at": dep["updated_at"].isoformat()}}

    def create_or_update_deployment(self, endpoint_name: str, spec: dict[str, Any]) -> DeploymentRecord:
        """Validate and resolve the deployment now; start (or replace) its workers in the background.

        Returns the deployment with ``provisioning_state`` Creating or Updating; poll :meth:`get_deployment`.

        Raises:
            ValidationError: bad fields; a custom model without code_configuration; missing code,
                scoring script or model files. NotFoundError: unknown endpoint, model or environment.
            ConflictError: the deployment is being provisioned or deleted.
        """
        self._on_leader()
        self.repo.get_endpoint(endpoint_name)
        spec = {**spec, "endpoint_name": spec.get("endpoint_name") or endpoint_name}
        dep = self._validate(ManagedOnlineDeployment, spec, "online deployment")
        if dep.endpoint_name != endpoint_name:
            raise ValidationError(f"deployment {dep.name!r} names endpoint_name {dep.endpoint_name!r} but is "
                                  f"created under endpoint {endpoint_name!r}", details={"field": "endpoint_name"})
        data = dep.model_dump(mode="json", exclude_none=True, exclude=set(ManagedOnlineDeployment._server_fields))
        try:
            current = self.repo.get_deployment(endpoint_name, dep.name)
        except NotFoundError:
            current = None
        if current is None:
            _pin_model(data, self._resolve(endpoint_name, data))  # errors now, not in the background
            self.repo.create_deployment(endpoint_name, dep.name, data, DeploymentState.CREATING)
            state = DeploymentState.CREATING
        else:
            if current["provisioning_state"] in (DeploymentState.CREATING, DeploymentState.UPDATING,
                                                 DeploymentState.DELETING):
                raise ConflictError(f"deployment {dep.name!r} is {current['provisioning_state']}; wait for it to "
                                    "finish, then update it")
            # an update names only what changes (`--set instance_count=2`): the stored deployment is the base
            fields = set(spec) & set(ManagedOnlineDeployment.model_fields)
            data = {**current["spec"], **{k: v for k, v in data.items() if k in fields}}
            _pin_model(data, self._resolve(endpoint_name, data))
            self.repo.update_deployment(endpoint_name, dep.name, spec=data, error=None,
                                        provisioning_state=DeploymentState.UPDATING)
            state = DeploymentState.UPDATING
        self._provision(endpoint_name, dep.name, state)
        return self.get_deployment(endpoint_name, dep.name)

    def get_deployment(self, endpoint_name: str, name: str) -> DeploymentRecord:
        return self._dep_view(self.repo.get_deployment(endpoint_name, name))

    def list_deployments(self, endpoint_name: str) -> list[DeploymentRecord]:
        self.repo.get_endpoint(endpoint_name)
        return [self._dep_view(d) for d in self.repo.list_deployments(endpoint_name)]

    def delete_deployment(self, endpoint_name: str, name: str) -> None:
        """Raises ConflictError while the endpoint sends it live or mirrored traffic."""
        self._on_leader()
        ep = self.repo.get_endpoint(endpoint_name)
        self.repo.get_deployment(endpoint_name, name)
        live = ep["spec"].get("traffic", {}).get(name, 0)
        mirror = ep["spec"].get("mirror_traffic", {}).get(name, 0)
        if live or mirror:
            raise ConflictError(f"deployment {name!r} still receives {live} % of the traffic of endpoint "
                                f"{endpoint_name!r}{f' and {mirror} % mirrored' if mirror else ''}; move its traffic first "
                                f"(openaml online-endpoint update -n {endpoint_name} --traffic \"{name}=0 ...\")",
                                details={"traffic": live, "mirror_traffic": mirror})
        self.repo.update_deployment(endpoint_name, name, provisioning_state=DeploymentState.DELETING)
        self.supervisor.stop_deployment(_key(endpoint_name, name))
        self.repo.delete_deployment(endpoint_name, name)
        self._refresh(endpoint_name)
        _remove_tree(self._dir(endpoint_name, name))  # a new deployment of that name shows none of these logs

    def get_logs(self, endpoint_name: str, name: str, lines: int | None = None) -> str:
        """The deployment's log (worker output and supervisor events), last ``lines`` lines."""
        self.repo.get_deployment(endpoint_name, name)
        path = self._dir(endpoint_name, name) / "logs" / "deployment.log"
        if not path.exists():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace")
        if lines is not None and lines >= 0:
            parts = text.splitlines()[-lines:] if lines else []
            return "\n".join(parts) + ("\n" if parts else "")
        return text

    # ------------------------------------------------------------------ routing
    def route(self, endpoint_name: str) -> RouteTable | None:
        return self._routes.get(endpoint_name)

    def targets(self, endpoint_name: str, deployment: str) -> list[str]:
        """Unix socket paths of the deployment's ready workers (the router's only way to them)."""
        return self.supervisor.targets(_key(endpoint_name, deployment))

    def exit_reason(self, target: str) -> str | None:
        """How the worker on ``target`` exited (``"exited with signal 9 (SIGKILL)"``), None while it runs."""
        return self.supervisor.exit_reason(target)

    def capacity(self, target: str) -> int | None:
        """Requests the worker on ``target`` runs at once (None: any number, it batches; or unknown)."""
        return self.supervisor.capacity(target)

    def recycle(self, endpoint_name: str, deployment: str, target: str, reason: str) -> None:
        """Replace the worker on ``target`` (a new one ready first); the reason goes to the deployment log."""
        self.supervisor.recycle(_key(endpoint_name, deployment), target, reason)

    def _refresh(self, name: str) -> None:
        try:
            ep = self.repo.get_endpoint(name)
        except NotFoundError:
            with self._lock:
                self._routes.pop(name, None)
            return
        spec = ep["spec"]
        deps = {}
        for d in self.repo.list_deployments(name):
            rs = OnlineRequestSettings.model_validate(d["spec"].get("request_settings") or {})
            deps[d["name"]] = DeploymentRoute(d["name"], _key(name, d["name"]), rs)
        table = RouteTable(
            name=name, auth_mode=spec.get("auth_mode", "key"),
            keys=(ep["auth"]["primary_key"], ep["auth"]["secondary_key"]),
            token_secret=ep["auth"]["token_secret"].encode(),
            traffic=[(k, v) for k, v in spec.get("traffic", {}).items() if v > 0],
            mirror=[(k, v) for k, v in spec.get("mirror_traffic", {}).items() if v > 0],
            deployments=deps)
        with self._lock:
            self._routes[name] = table

    # ------------------------------------------------------------------ provisioning
    def _dir(self, endpoint_name: str, name: str) -> Path:
        return self.root / endpoint_name / name

    def _log(self, endpoint_name: str, name: str, msg: str) -> None:
        path = self._dir(endpoint_name, name) / "logs" / "deployment.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [openaml] {msg}\n")

    def _event(self, key: str, msg: str) -> None:
        endpoint_name, _, name = key.partition("/")
        self._log(endpoint_name, name, msg)

    def _provision(self, endpoint_name: str, name: str, state: str) -> None:
        def work() -> None:
            launch: LaunchSpec | None = None
            try:
                dep = self.repo.get_deployment(endpoint_name, name)
                self._log(endpoint_name, name, f"{state.lower()} deployment {name!r}")
                launch = self._launch_spec(endpoint_name, name, dep["spec"])
                self.supervisor.deploy(_key(endpoint_name, name), launch)
            except Exception as exc:  # noqa: BLE001 - recorded on the deployment and in its log
                msg = exc.message if isinstance(exc, OpenAMLError) else str(exc) if isinstance(
                    exc, InitFailed) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, (OpenAMLError, InitFailed)):
                    self._log(endpoint_name, name, traceback.format_exc())
                self._log(endpoint_name, name, f"deployment failed: {msg}")
                if launch is not None and launch.python != self.supervisor.python_of(_key(endpoint_name, name)):
                    _remove_tree(Path(launch.python).parent.parent)  # the new workers are gone; old ones keep theirs
                try:
                    self.repo.update_deployment(endpoint_name, name, provisioning_state=DeploymentState.FAILED,
                                                error=msg)
                except NotFoundError:
                    pass
                return
            self._drop_old_layers(launch)
            self._log(endpoint_name, name, f"deployment {name!r} succeeded ({launch.instance_count} instance(s))")
            try:
                self.repo.update_deployment(endpoint_name, name, provisioning_state=DeploymentState.SUCCEEDED,
                                            error=None)
            except NotFoundError:
                self.supervisor.stop_deployment(_key(endpoint_name, name))
            self._refresh(endpoint_name)

        self._refresh(endpoint_name)
        t = threading.Thread(target=work, name=f"provision-{endpoint_name}-{name}", daemon=True)
        self._threads[_key(endpoint_name, name)] = t
        t.start()

    def _resolve(self, endpoint_name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Model files, code, scoring script, environment and mode of a deployment spec.

        Raises ValidationError / NotFoundError naming the field.
        """
        model = spec.get("model")
        model_path: Path | None = None
        model_name, model_version = "model", "1"
        gate = RaiGateService(self.ctx)
        if isinstance(model, str):
            m = self.ctx.services["models"].resolve_reference(model)
            model_path, model_name, model_version = Path(m["local_path"]), m["name"], str(m["version"])
            gate.check_deployment("online", model_name, model_version, f"online endpoint {endpoint_name!r}")
        elif isinstance(model, dict):
            gate.check_deployment("online", None, None, f"online endpoint {endpoint_name!r}")
            path = model.get("path")
            if not path:
                raise ValidationError("field 'model.path': an inline model needs a path", details={"field": "model"})
            model_path = self._server_path(str(path), "model.path")
            model_name = model.get("name") or f"{spec['name']}-model"
            model_version = str(model.get("version") or 1)
        code_dir: Path | None = None
        script: Path | None = None
        cc = spec.get("code_configuration")
        if cc:
            if not cc.get("scoring_script"):
                raise ValidationError("field 'code_configuration.scoring_script' is required",
                                      details={"field": "code_configuration.scoring_script"})
            code_dir = self._server_path(str(cc.get("code") or "."), "code_configuration.code")
            if code_dir.is_file():
                code_dir = code_dir.parent
            script = (code_dir / cc["scoring_script"]).resolve()
            if not script.is_file():
                raise ValidationError(f"field 'code_configuration.scoring_script': {cc['scoring_script']!r} is not a "
                                      f"file in the code folder", details={"field": "code_configuration.scoring_script"})
        is_mlflow = model_path is not None and (model_path / "MLmodel").is_file()
        if script is None and not is_mlflow:
            raise ValidationError(f"deployment {spec['name']!r}: a model that is not an MLflow model needs "
                                  "code_configuration (code and scoring_script); MLflow models may omit it "
                                  "(no-code deployment)", details={"field": "code_configuration"})
        env = spec.get("environment")
        if env is None and script is not None and not is_mlflow:
            raise ValidationError(f"deployment {spec['name']!r}: field 'environment' is required with a scoring "
                                  "script (give a curated name, azureml:<name>:<version> or an inline "
                                  "environment)", details={"field": "environment"})
        env_spec = self.ctx.services["environments"].resolve_for_job(env) if env is not None else None
        return {"model_path": model_path, "model_name": model_name, "model_version": model_version,
                "code_dir": code_dir, "script": script, "mode": "script" if script is not None else "mlflow",
                "environment": env_spec}

    def _server_path(self, value: str, field_name: str) -> Path:
        if value.startswith("openaml-code:"):
            p = self.ctx.layout.code / value.split(":", 1)[1]
        elif value.startswith("azureml://"):
            p = self.ctx.services["datastores"].resolve(value)
        else:
            p = Path(value).expanduser()
            if not p.is_absolute():
                raise ValidationError(f"field {field_name!r}: {value!r} is a relative path; the SDK and CLI upload "
                                      "local paths first (use them, or give an absolute path on the server)",
                                      details={"field": field_name, "value": value})
        if not p.exists():
            raise ValidationError(f"field {field_name!r}: {value} does not exist on the server",
                                  details={"field": field_name, "value": value})
        return p

    def _launch_spec(self, endpoint_name: str, name: str, spec: dict[str, Any]) -> LaunchSpec:
        """How to start the deployment's workers: its own environment layer (never the shared environment
        nor the server's interpreter), read-only mounts of both where the machine allows them."""
        r = self._resolve(endpoint_name, spec)
        folder = self._dir(endpoint_name, name)
        log = folder / "logs" / "deployment.log"
        python, ro_binds = self._worker_python(endpoint_name, name, r["environment"], folder, log)
        model_dir = folder / "azureml-models" / r["model_name"] / r["model_version"]
        if r["model_path"] is not None:
            _lay_out_model(r["model_path"], model_dir / r["model_path"].name)
        rs = OnlineRequestSettings.model_validate(spec.get("request_settings") or {})
        probe = ProbeSettings.model_validate(spec.get("readiness_probe") or {})
        live = ProbeSettings.model_validate(spec.get("liveness_probe") or {})
        batching = MicroBatching.model_validate(spec.get("micro_batching") or {})
        app_root = str(r["code_dir"] or folder)
        config = {"mode": r["mode"], "deployment": f"{endpoint_name}/{name}", "app_root": app_root,
                  "entry_script": str(r["script"]) if r["script"] else None,
                  "mlflow_model_path": str(r["model_path"]) if r["mode"] == "mlflow" else None,
                  **rs.model_dump(), "micro_batching": batching.model_dump()}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAML_", "MLFLOW_"))}
        env.update({"AZUREML_MODEL_DIR": str(model_dir), "AML_APP_ROOT": app_root,
                    "AZUREML_SOURCE_DIRECTORY": app_root, "PYTHONUNBUFFERED": "1",
                    "AZUREML_ENTRY_SCRIPT": str(r["script"]) if r["script"] else "",
                    "SERVICE_NAME": endpoint_name, "SERVICE_VERSION": name,
                    "WORKSPACE_NAME": self.ctx.workspace_name,
                    "SCORING_TIMEOUT_MS": str(rs.request_timeout_ms)})
        env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(Path(python).parent.parent)  # the layer: `pip install` in score.py lands there
        env.update(spec.get("environment_variables") or {})
        return LaunchSpec(python=python, config=config, env=env, cwd=app_root, log=log, run_dir=folder / "run",
                          instance_count=int(spec.get("instance_count") or 1),
                          ready_timeout=probe.initial_delay + probe.period * probe.failure_threshold,
                          liveness_period=float(live.period), liveness_failures=live.failure_threshold,
                          ro_binds=ro_binds, hide=self._hide(endpoint_name, name, folder, r))

    def _hide(self, endpoint_name: str, name: str, folder: Path, r: dict[str, Any]) -> list[str]:
        """The lines that hide the workspace's secrets from the deployment's workers, as from a job's
        (:func:`openaml.environments._hide.hide_lines`): of the workspace folder they see only the deployment's
        own folder (environment layer, laid-out model, run files), ``envs/``, and its model and code
        folders where those are in the workspace. Only the deployment's folder is writable: ``envs/``, the
        code snapshot, the model (and its laid-out hard links) and every local datastore's folder are
        read-only. Where mount namespaces are unavailable: none, and the
        deployment log says so."""
        from openaml._settings import openaml_home
        from openaml.environments import read_only_mounts_available
        from openaml.environments._hide import (
            NOT_HIDDEN_DEPLOYMENT,
            hide_lines,
            server_secret_files,
            worker_sockets_root,
        )
        from openaml.serving._supervisor import _socket_dir

        if not read_only_mounts_available():
            self._log(endpoint_name, name, f"warning: {NOT_HIDDEN_DEPLOYMENT}")
            return []
        workspace = self.ctx.layout.root.resolve()
        own = folder.resolve()
        keep = [own, self.ctx.layout.envs.resolve(), own / "azureml-models"]  # the laid-out model: read-only
        keep += [Path(r[k]).resolve() for k in ("model_path", "code_dir") if r.get(k) is not None]
        sockets = Path(_socket_dir(folder / "run")).resolve()
        roots = [Path(p) for p in self.ctx.services["datastores"].local_roots()]
        return hide_lines(workspace, keep, openaml_home().resolve(), server_secret_files(self.ctx.settings),
                          sockets=sockets if sockets.parent == worker_sockets_root().resolve() else None,
                          writable=[own], read_only=roots)

    def _worker_python(self, endpoint_name: str, name: str, env_spec: dict[str, Any] | None, folder: Path,
                       log: Path) -> tuple[str, list[tuple[str, str]]]:
        """The workers' interpreter and read-only folders: a fresh layer (``folder/env/<n>``, as a job's,
        :func:`openaml.environments.job_layer`) over the shared cached environment or, with no environment
        or an image only, over the server's packages (the documented default environment). Model code that
        runs ``pip install`` changes the layer only; the shared environment and the server's virtualenv
        are mounted read-only in each worker's mount namespace where ``unshare`` works. A layer is made per
        create/update, so an update starts from the environment as built (earlier layers are removed once
        the new workers serve, :meth:`_drop_old_layers`)."""
        from openaml.environments import (
            ensure_environment,
            find_uv,
            interpreter_roots,
            job_layer,
            read_only_mounts_available,
            spec_from_dict,
        )

        es = spec_from_dict(env_spec) if env_spec is not None else None
        layers = folder / "env"
        layers.mkdir(parents=True, exist_ok=True)
        dest = layers / str(time.time_ns())
        roots: list[Path] = []
        if es is not None:
            for w in es.warnings:
                self._log(endpoint_name, name, f"environment: {w}")
            bin_dir = ensure_environment(es, self.ctx.layout.envs, log=log)
        if es is None or es.kind == "base":
            shared: Path | None = None
            layer_bin = job_layer(Path(sys.executable).parent, dest, find_uv(), server=True)
        else:
            shared = bin_dir
            layer_bin = job_layer(bin_dir, dest, find_uv(),
                                  pycache=self.ctx.layout.envs / f".{es.spec_hash}.pycache")
        # the environment, its interpreter and the server's own (sys.path, virtualenv): read-only to the
        # workers, so that no score.py changes what the next worker, a runner or the server runs
        roots = interpreter_roots(shared, keep_writable=[folder]) if read_only_mounts_available() else []
        binds = [(str(p), str(p)) for p in roots]
        return str(layer_bin / ("python.exe" if os.name == "nt" else "python")), binds

    @staticmethod
    def _drop_old_layers(launch: LaunchSpec) -> None:
        """Remove the deployment's earlier environment layers (their workers are gone)."""
        current = Path(launch.python).parent.parent
        for old in current.parent.iterdir():
            if old != current:
                _remove_tree(old)

    @staticmethod
    def _validate(entity: Any, spec: dict[str, Any], kind: str) -> Any:
        clean = {k: v for k, v in spec.items() if k not in entity._server_fields}
        try:
            return entity.model_validate(clean)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind=kind) from None


def _lay_out_model(src: Path, dst: Path) -> None:
    """Put the model at ``dst`` as hard links (a copy across file systems), never as a symlink.

    A symlink would break MLflow's ``load_model`` on the path (it refuses an artifact that resolves
    outside its folder); registered model files never change, so links are safe.
    """
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir():
        shutil.copytree(src, dst, copy_function=link, symlinks=False)
    else:
        link(str(src), str(dst))


def _remove_tree(path: Path) -> None:
    """Delete a deleted endpoint's or deployment's folder (its workers are stopped)."""
    shutil.rmtree(path, ignore_errors=True)


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def make_token(endpoint: str, secret: bytes, expiry: float) -> str:
    """An ``aml_token``: ``<base64 json {e, exp}>.<hmac-sha256>``, checked by :func:`check_token`."""
    body = base64.urlsafe_b64encode(json.dumps({"e": endpoint, "exp": int(expiry)}).encode()).decode().rstrip("=")
    sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def check_token(token: str, endpoint: str, secret: bytes) -> bool:
    body, _, sig = token.partition(".")
    if not sig or not hmac.compare_digest(sig, hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()):
        return False
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return False
    return bool(claims.get("e") == endpoint and claims.get("exp", 0) > time.time())


def _pin_model(data: dict[str, Any], resolved: dict[str, Any]) -> None:
    """Store the model version a reference resolved to (``azureml:name@latest``, ``name@label`` or a
    name without version becomes ``azureml:name:<version>``), as Azure ML records the model's
    versioned id at deployment time: a restart or a newer registered version never changes what a
    deployment serves behind the user's back; an update that names the model again resolves anew."""
    ref = data.get("model")
    if isinstance(ref, str) and not ref.startswith("azureml://"):  # a full asset id is pinned already
        data["model"] = f"azureml:{resolved['model_name']}:{resolved['model_version']}"
