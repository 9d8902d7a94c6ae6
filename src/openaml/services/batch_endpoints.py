"""Batch endpoints and deployments (spec section 11): state, validation, invocation.

A batch deployment holds no process. Creating one validates everything an invocation will need
(compute, model, scoring script with ``run``, environment, settings) and stores the flat spec.
Invoking the endpoint builds a batch scoring job, a ``type: parallel`` job as Azure ML builds one
from the deployment (spec 14.6), and submits it through the job core: its result is the output
``score``. The job's entry script is the built-in driver :mod:`openaml.serving.batch_driver`, shipped
in a code snapshot beside the deployment's code; it sets ``AZUREML_MODEL_DIR`` and runs the
deployment's ``score.py`` (``init()``/``run(mini_batch)``) or, for an MLflow model without one,
scores each file with ``mlflow.pyfunc`` (``row,prediction,file`` lines).
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import DATA_TYPES, TERMINAL_JOB_STATUSES, JobStatus
from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._batch import (
    BatchDeployment,
    BatchEndpoint,
    PipelineComponentBatchDeployment,
    _norm_action,
    check_logging_level,
    flatten_deployment,
    parse_mini_batch_size,
)
from openaml.entities._endpoint import DeploymentState
from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError
from openaml.parallel._entity import check_output_file_name
from openaml.records import BatchDeploymentRecord, BatchEndpointRecord, JobRecord
from openaml.runner._pool import stop_pools
from openaml.services._context import WorkspaceContext
from openaml.services._job_resolve import ResolveErrors, _port_of, resolve_inputs
from openaml.services.kinds.parallel import _check_instances
from openaml.services.rai_gate import RaiGateService
from openaml.store import BatchEndpointRepository

__all__ = ["BatchEndpointService", "DRIVER_SCRIPT", "SCORE_OUTPUT"]

#: serializes a model deployment's invocation (output check + job creation) within this server
_INVOKE_LOCK = threading.Lock()

SCORE_OUTPUT = "score"  # the batch scoring job's output (azure-ai-ml: ``job download --output-name score``)
DRIVER_SCRIPT = "_openaml_batch_driver.py"
ENDPOINT_TAG = "openaml.batch_endpoint"
DEPLOYMENT_TAG = "openaml.batch_deployment"


class BatchEndpointService:
    """Use cases of batch endpoints and deployments."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self.repo = BatchEndpointRepository(ctx.store)

    # ------------------------------------------------------------------ endpoints
    def _id(self, name: str, deployment: str | None = None) -> str:
        rid = (f"/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/"
               f"workspaces/{self.ctx.workspace_name}/batchEndpoints/{name}")
        return rid + (f"/deployments/{deployment}" if deployment else "")

    def _scoring_uri(self, name: str) -> str:
        return f"{self.ctx.url}/api/v1/batch-endpoints/{name}/jobs"

    def _endpoint_view(self, ep: dict[str, Any]) -> BatchEndpointRecord:
        name = ep["name"]
        return {**ep["spec"], "name": name, "provisioning_state": ep["provisioning_state"],
                "scoring_uri": self._scoring_uri(name), "openapi_uri": f"{self.ctx.url}/openapi.json",
                "id": self._id(name),
                "creation_context": {"created_at": ep["created_at"].isoformat(),
                                     "last_modified_at": ep["updated_at"].isoformat()}}

    def create_or_update_endpoint(self, spec: dict[str, Any]) -> BatchEndpointRecord:
        """Create the endpoint, or update the fields given (description, tags, ``defaults``).

        Raises:
            ValidationError: bad fields; ``defaults.deployment_name`` naming a deployment the
                endpoint does not have (listing those it has).
        """
        ep = _validate(BatchEndpoint, spec, "batch endpoint")
        data = ep.model_dump(mode="json", exclude_none=True, exclude=set(BatchEndpoint._server_fields))
        try:
            current = self.repo.get_endpoint(ep.name)
        except NotFoundError:
            current = None
        if current is None:
            self._check_unique(ep.name)
            same = [e["name"] for e in self.repo.list_endpoints() if e["name"].lower() == ep.name.lower()]
            if same:  # Azure: endpoint names are DNS names, unique whatever their case
                raise ConflictError(f"field 'name': batch endpoint {same[0]!r} exists; endpoint names are DNS names, "
                                    f"unique whatever their case: choose another name than {ep.name!r}",
                                    details={"field": "name", "value": ep.name})
            self._check_default(ep.name, data, existing=set())
            self.repo.create_endpoint(ep.name, data, DeploymentState.SUCCEEDED)
        else:
            fields = set(spec) & set(BatchEndpoint.model_fields)
            merged = {**current["spec"], **{k: v for k, v in data.items() if k in fields}}
            self._check_default(ep.name, merged, existing={d["name"] for d in self.repo.list_deployments(ep.name)})
            self.repo.update_endpoint(ep.name, lambda _e: {"spec": merged})
        return self.get_endpoint(ep.name)

    def _check_unique(self, name: str) -> None:
        """Endpoint names are one namespace, online and batch (Azure: unique in the region, as they are
        DNS names). Raises ConflictError naming the online endpoint."""
        from openaml.store import EndpointRepository

        try:
            EndpointRepository(self.ctx.store).get_endpoint(name)
        except NotFoundError:
            return
        raise ConflictError(f"field 'name': {name!r} is the name of an online endpoint; endpoint names are unique "
                            "among online and batch endpoints: choose another name",
                            details={"field": "name", "value": name})

    @staticmethod
    def _check_default(name: str, spec: dict[str, Any], existing: set[str]) -> None:
        default = (spec.get("defaults") or {}).get("deployment_name")
        if default and default not in existing:
            raise ValidationError(
                f"batch endpoint {name!r}: field 'defaults.deployment_name': {default!r} is not a deployment of it "
                f"(its deployments: {', '.join(sorted(existing)) or 'none'}); create the deployment first, with "
                "--set-default", details={"field": "defaults.deployment_name", "value": default})

    def get_endpoint(self, name: str) -> BatchEndpointRecord:
        return self._endpoint_view(self.repo.get_endpoint(name))

    def list_endpoints(self) -> list[BatchEndpointRecord]:
        return [self._endpoint_view(e) for e in self.repo.list_endpoints()]

    def delete_endpoint(self, name: str) -> None:
        """Delete the endpoint and its deployments; its jobs stay (as Azure ML keeps them)."""
        self.repo.get_endpoint(name)
        self.repo.delete_endpoint(name)
        stop_pools(self.ctx.layout.root, endpoint=name)  # its deployments' warm pools

    # ------------------------------------------------------------------ deployments
    def _dep_view(self, dep: dict[str, Any]) -> BatchDeploymentRecord:
        return {**dep["spec"], "name": dep["name"], "endpoint_name": dep["endpoint_name"],
                "provisioning_state": dep["provisioning_state"], "id": self._id(dep["endpoint_name"], dep["name"]),
                "scoring_uri": self._scoring_uri(dep["endpoint_name"]),
                "creation_context": {"created_at": dep["created_at"].isoformat(),
                                     "last_modified_at": dep["updated_at"].isoformat()}}

    def create_or_update_deployment(self, endpoint_name: str, spec: dict[str, Any]) -> BatchDeploymentRecord:
        """Validate the deployment (any of the three shapes), register an inline model, store it.

        Returns the deployment, ``provisioning_state`` Succeeded (nothing runs until an invocation).

        Raises:
            ValidationError: naming the field: a compute that does not exist, ``mini_batch_size`` 0 or
                malformed, ``append_row`` without ``output_file_name``, a scoring script that is not a
                file or defines no ``run``, a custom model without a scoring script, a scoring script
                without an environment. NotFoundError: unknown endpoint, model or environment.
        """
        self.repo.get_endpoint(endpoint_name)
        spec = {**spec, "endpoint_name": spec.get("endpoint_name") or endpoint_name}
        name = spec.get("name")
        try:
            current = self.repo.get_deployment(endpoint_name, str(name))["spec"] if name else None
        except NotFoundError:
            current = None
        if spec.get("type") == "pipeline" or (current or {}).get("type") == "pipeline" and "type" not in spec:
            data, runtime = self._pipeline_deployment(endpoint_name, {**(current or {}), **spec})
        else:
            flat = flatten_deployment(spec)
            if current is not None:  # an update names only what changes (`--set mini_batch_size=20`)
                flat = {**current, **flat}
            data, runtime = self._model_deployment(endpoint_name, flat)
        row = self.repo.put_deployment(endpoint_name, data["name"], data, runtime, DeploymentState.SUCCEEDED)
        return self._dep_view(row)

    def _pipeline_deployment(self, endpoint_name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        dep = _validate(PipelineComponentBatchDeployment, spec, "batch deployment")
        _check_endpoint_name(dep.endpoint_name, endpoint_name, dep.name)
        data = dep.model_dump(mode="json", exclude_none=True,
                              exclude=set(PipelineComponentBatchDeployment._server_fields))
        if dep.job_definition is not None:
            raise ValidationError(f"batch deployment {dep.name!r}: field 'job_definition': deploying a pipeline job as "
                                  "the template is not supported here; register its pipeline component and deploy it "
                                  "(component: azureml:<name>@latest)", details={"field": "job_definition"})
        if isinstance(dep.component, str):  # an unknown component is refused now, not at invocation
            self.ctx.services["components"].resolve_reference(dep.component)
        return data, {}

    def _check_output_not_taken(self, path: str, file_name: str) -> None:
        """No active batch scoring job writes the same file (its output is published at its end, so the
        file's absence now does not protect it: review F30, two invocations at once).

        Raises:
            ConflictError: naming the job that will write it.
        """
        active = [st for k, st in vars(JobStatus).items() if k.isupper() and st not in TERMINAL_JOB_STATUSES]
        want = (path.rstrip("/"), file_name)
        for row in self.ctx.store.list_jobs(status=active):
            spec = row.get("spec") or {}
            if ENDPOINT_TAG not in (spec.get("tags") or {}) and ENDPOINT_TAG not in (row.get("tags") or {}):
                continue
            out = ((spec.get("outputs") or {}).get(SCORE_OUTPUT) or {})
            if not out.get("path"):
                continue
            given = str(out["path"]).rstrip("/")
            if out.get("type") == "uri_file":
                head, _, tail = given.rpartition("/")
                taken = (head, tail)
            else:
                args = str((spec.get("task") or {}).get("program_arguments") or "").split()
                name = args[args.index("--append_row_file_name") + 1] if "--append_row_file_name" in args[:-1] else None
                taken = (given, name or "")
            if taken == want:
                raise ConflictError(f"field 'output_path': {want[0]}/{want[1]} is the output of batch job {row['name']!r}, "
                                    f"which is {row['status']}; batch jobs do not overwrite outputs: give another "
                                    "--output-path or output_file_name, or wait for it to end",
                                    details={"field": "output_path", "value": path, "job": row["name"]})

    def _check_output_free(self, path: str, file_name: str) -> None:
        """An ``--output-path`` that already holds the output file is refused (review: a second invoke
        to the same path replaced the first job's predictions; Azure ML fails a batch job whose output
        file exists).

        Raises:
            ConflictError: naming the path and file, and the fixes.
        """
        self._check_output_not_taken(path, file_name)
        try:
            located = self.ctx.services["datastores"].locate(path.rstrip("/"))
        except OpenAMLError:
            return  # a bad path is refused by the job's own resolution, naming the field
        if located is None:
            return
        port, rel = located
        target = f"{rel}/{file_name}" if rel else file_name
        if port.exists(target):
            raise ConflictError(f"field 'output_path': {path.rstrip('/')}/{file_name} exists already (an earlier "
                                "job's output?); batch jobs do not overwrite outputs: give another --output-path or "
                                "output_file_name, or delete that file",
                                details={"field": "output_path", "value": path})

    def _model_deployment(self, endpoint_name: str, flat: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if "output_file_name" in flat and not flat["output_file_name"] and \
                str(flat.get("output_action", "append_row")).lower().replace("-", "_") in ("append_row", "appendrow"):
            raise ValidationError("field 'output_file_name': output_action append_row collects every run() result into "
                                  "one file and needs its name (e.g. predictions.csv), or use output_action: "
                                  "summary_only", details={"field": "output_file_name"})
        if flat.get("output_file_name") and (problem := check_output_file_name(flat["output_file_name"])):
            raise ValidationError(f"field 'output_file_name': {problem}",
                                  details={"field": "output_file_name", "value": str(flat["output_file_name"])})
        dep = _validate(BatchDeployment, {k: v for k, v in flat.items() if k != "settings"}, "batch deployment")
        _check_endpoint_name(dep.endpoint_name, endpoint_name, dep.name)
        errors = ResolveErrors()
        if not dep.compute:
            errors.add("compute", "a batch deployment needs a compute (e.g. compute: local, or a cluster created "
                                  "with `openaml compute create`)")
        else:
            try:
                dep.compute = self.ctx.services["computes"].canonical_name(dep.compute)
                _check_instances(self.ctx, dep.compute, (dep.resources.instance_count if dep.resources else None)
                                 or dep.instance_count or 1, errors)
            except NotFoundError as exc:
                errors.add("compute", exc.message)
        data = dep.model_dump(mode="json", exclude_none=True, exclude=set(BatchDeployment._server_fields))
        for k in ("code_path", "scoring_script"):
            data.pop(k, None)
        model = self._deployment_model(dep.name, data, errors)
        code_dir, script = self._scoring_code(data, errors)
        is_mlflow = model is not None and model.get("type") == "mlflow_model" or (
            model is not None and (Path(model["local_path"]) / "MLmodel").is_file())
        if model is None and not errors.items:
            errors.add("model", "a model batch deployment needs a model (azureml:<name>:<version> or an inline "
                                "{name, path})")
        elif script is None and not is_mlflow and not errors.items:
            errors.add("code_configuration", "a model that is not an MLflow model needs code_configuration (code and "
                                             "scoring_script with init() and run(mini_batch)); MLflow models may omit "
                                             "it (no-code deployment)")
        env = data.get("environment")
        if env is None and script is not None and not is_mlflow:
            errors.add("environment", "is required with a scoring script (a curated name, azureml:<name>:<version> "
                                      "or an inline environment)")
        elif env is not None:
            try:
                self.ctx.services["environments"].resolve_for_job(env)
            except (NotFoundError, ValidationError) as exc:
                errors.add("environment", exc.message)
        errors.raise_if_any()
        assert model is not None
        data["model"] = model["ref"]
        code_id = self._driver_snapshot(code_dir)
        runtime = {"code": f"openaml-code:{code_id}", "scoring_script": script, "mode": "script" if script else "mlflow",
                   "model_ref": model["ref"], "model_type": "mlflow_model" if is_mlflow else "custom_model",
                   "model_name": model["name"], "model_version": str(model["version"]),
                   "model_base": Path(model["local_path"]).name}
        return data, runtime

    def _deployment_model(self, name: str, data: dict[str, Any], errors: ResolveErrors) -> dict[str, Any] | None:
        """The registered model (``ref``, ``name``, ``version``, ``local_path``, ``type``); an inline
        model is registered now (a new version), as Azure ML registers it on deployment create."""
        model = data.get("model")
        svc = self.ctx.services["models"]
        gate = RaiGateService(self.ctx)
        try:
            if isinstance(model, str):
                m = svc.resolve_reference(model)
                gate.check_deployment("batch", m["name"], str(m["version"]), f"batch deployment {name!r}")
            elif isinstance(model, dict):
                gate.check_deployment("batch", None, None, f"batch deployment {name!r}")
                if not model.get("path"):
                    errors.add("model.path", "an inline model needs a path")
                    return None
                spec = {"name": model.get("name") or f"{name}-model", "path": model["path"],
                        "type": model.get("type") or "custom_model",
                        **{k: model[k] for k in ("version", "description", "tags") if model.get(k)}}
                reg = svc.create_or_update(spec)
                m = svc.resolve_reference(f"azureml:{reg['name']}:{reg['version']}")
            else:
                return None
        except (NotFoundError, ValidationError) as exc:
            errors.add("model", exc.message)
            return None
        return {**m, "ref": f"azureml:{m['name']}:{m['version']}"}

    def _scoring_code(self, data: dict[str, Any], errors: ResolveErrors) -> tuple[Path | None, str | None]:
        """(code folder on the server, scoring script path inside it); the script must define ``run``."""
        cc = data.get("code_configuration")
        if not cc:
            return None, None
        script = cc.get("scoring_script")
        if not script:
            errors.add("code_configuration.scoring_script", "is required with code_configuration")
            return None, None
        code = str(cc.get("code") or "")
        if code.startswith("openaml-code:"):
            code_dir = self.ctx.layout.code / code.split(":", 1)[1]
        elif code.startswith("azureml://"):
            code_dir = self.ctx.services["datastores"].resolve(code)
        else:
            errors.add("code_configuration.code", f"{code!r} is not an uploaded code folder; the SDK and CLI upload "
                                                  "local folders (use them)")
            return None, None
        if not code_dir.is_dir():
            errors.add("code_configuration.code", f"{code} does not exist on the server")
            return None, None
        path = (code_dir / script).resolve()
        if not path.is_file() or not path.is_relative_to(code_dir.resolve()):
            errors.add("code_configuration.scoring_script", f"{script!r} is not a file in the code folder")
            return None, None
        problem = _scoring_script_problem(path)
        if problem:
            errors.add("code_configuration.scoring_script", f"{script}: {problem}")
            return None, None
        return code_dir, script

    def _driver_snapshot(self, code_dir: Path | None) -> str:
        """A code snapshot holding the deployment's code and the built-in driver; returns its id."""
        from openaml.services.uploads import hash_tree

        driver = Path(__file__).resolve().parent.parent / "serving" / "batch_driver.py"
        stage = self.ctx.layout.code / f".stage-{uuid.uuid4().hex}"
        try:
            if code_dir is not None:
                shutil.copytree(code_dir, stage)
            else:
                stage.mkdir(parents=True)
            shutil.copy2(driver, stage / DRIVER_SCRIPT)
            digest = hashlib.sha256(f"folder:{hash_tree(stage)}".encode()).hexdigest()
            dest = self.ctx.layout.code / digest
            if dest.exists():
                return digest
            stage.rename(dest)
            return digest
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def get_deployment(self, endpoint_name: str, name: str) -> BatchDeploymentRecord:
        """Raises NotFoundError: the endpoint ("Batch endpoint E not found") or the deployment."""
        self.repo.get_endpoint(endpoint_name)
        return self._dep_view(self.repo.get_deployment(endpoint_name, name))

    def list_deployments(self, endpoint_name: str) -> list[BatchDeploymentRecord]:
        self.repo.get_endpoint(endpoint_name)
        return [self._dep_view(d) for d in self.repo.list_deployments(endpoint_name)]

    def delete_deployment(self, endpoint_name: str, name: str) -> None:
        """Delete a deployment; the endpoint's default is cleared when it named it."""
        self.repo.get_endpoint(endpoint_name)
        self.repo.get_deployment(endpoint_name, name)
        self.repo.delete_deployment(endpoint_name, name)
        stop_pools(self.ctx.layout.root, endpoint=endpoint_name, deployment=name)  # its warm pool

        def clear(ep: dict[str, Any]) -> dict[str, Any]:
            spec = dict(ep["spec"])
            if (spec.get("defaults") or {}).get("deployment_name") == name:
                spec["defaults"] = {k: v for k, v in spec["defaults"].items() if k != "deployment_name"}
            return {"spec": spec}

        self.repo.update_endpoint(endpoint_name, clear)

    # ------------------------------------------------------------------ invocation
    def invoke(self, endpoint_name: str, body: dict[str, Any]) -> JobRecord:
        """Run a batch scoring job of the endpoint's ``deployment_name`` (or default) deployment.

        ``body``: ``inputs`` ``{name: {type, path}}`` (a model deployment takes one data input:
        ``uri_file``, ``uri_folder`` or ``mltable``; its path an ``azureml://`` URI or a data asset
        reference; the SDK uploads local paths), ``outputs`` ``{score: {type, path}}`` (where the results
        land: a ``uri_folder`` holding ``output_file_name``, or a ``uri_file``, the results file itself
        whatever ``output_file_name`` says), ``deployment_name``, ``job_name``, ``experiment_name``, and overrides of the
        deployment's ``mini_batch_size``, ``instance_count``, ``output_file_name``,
        ``max_concurrency_per_instance``, ``error_threshold``, ``retry_settings``, ``logging_level``,
        ``environment_variables`` (``params_override``, a list of ``{field: value}``, is merged too).

        Returns the job (``type: parallel``, output ``score``, tags naming the endpoint and deployment).

        Raises:
            ValidationError: naming the field: no deployment and no default, no input, an input that
                does not exist or an empty folder, a bad override. NotFoundError: unknown endpoint or
                deployment.
        """
        ep = self.repo.get_endpoint(endpoint_name)
        body = _merge_overrides(dict(body or {}))
        dep_name = body.get("deployment_name") or (ep["spec"].get("defaults") or {}).get("deployment_name")
        if not dep_name:
            names = [d["name"] for d in self.repo.list_deployments(endpoint_name)]
            raise ValidationError(
                f"batch endpoint {endpoint_name!r} has no default deployment; give deployment_name "
                f"(--deployment-name, its deployments: {', '.join(names) or 'none'}) or set one with "
                f"`openaml batch-deployment create --set-default` / --set defaults.deployment_name=<name>",
                details={"field": "deployment_name"})
        dep = self.repo.get_deployment(endpoint_name, dep_name)
        if dep["spec"].get("type") == "pipeline":
            return self._invoke_pipeline(endpoint_name, dep, body)
        with _INVOKE_LOCK:  # the output check and the job's creation are one step: two invocations of one
            # output file at the same instant cannot both pass it (review F30)
            return self.ctx.services["jobs"].submit(self._scoring_job(endpoint_name, dep, body))

    def _scoring_job(self, endpoint_name: str, dep: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        spec, rt = dep["spec"], dep["runtime"]
        inputs = dict(body.get("inputs") or {})
        if len(inputs) != 1:
            raise ValidationError(
                f"batch deployment {dep['name']!r} scores one data input; got {len(inputs)} "
                f"({', '.join(inputs) or 'none'}): give --input <path|azureml:...> (SDK: input=Input(...))",
                details={"field": "inputs"})
        in_name, inp = next(iter(inputs.items()))
        inp = dict(inp or {})
        typ = inp.get("type") or "uri_folder"
        if typ not in DATA_TYPES:
            raise ValidationError(f"field 'inputs.{in_name}.type': {typ!r} is not a data input type; use uri_file, "
                                  "uri_folder or mltable", details={"field": f"inputs.{in_name}.type"})
        data_input = {"type": typ, "path": inp.get("path"), "mode": inp.get("mode") or "ro_mount"}
        self._check_input(in_name, data_input)
        s = {k: spec.get(k) for k in ("mini_batch_size", "max_concurrency_per_instance", "output_action",
                                      "output_file_name", "error_threshold", "logging_level")}
        s["retry_settings"] = dict(spec.get("retry_settings") or {})
        s["instance_count"] = int((spec.get("resources") or {}).get("instance_count") or spec.get("instance_count") or 1)
        s["environment_variables"] = dict(spec.get("environment_variables") or {})
        for k in ("mini_batch_size", "max_concurrency_per_instance", "output_file_name", "error_threshold",
                  "logging_level", "instance_count", "output_action"):
            if body.get(k) is not None:
                s[k] = body[k]
        if body.get("retry_settings"):
            s["retry_settings"].update(body["retry_settings"])
        if body.get("environment_variables"):
            s["environment_variables"].update({str(k): str(v) for k, v in body["environment_variables"].items()})
        try:
            check_logging_level(s["logging_level"])
        except ValueError as exc:
            raise ValidationError(f"field 'logging_level': {exc}", details={"field": "logging_level"}) from None
        try:
            s["mini_batch_size"] = parse_mini_batch_size(10 if s["mini_batch_size"] is None else s["mini_batch_size"])
        except ValueError as exc:
            raise ValidationError(f"field 'mini_batch_size': {exc}", details={"field": "mini_batch_size"}) from None
        for k in ("instance_count", "max_concurrency_per_instance"):
            if not isinstance(s[k], int) or isinstance(s[k], bool) or s[k] < 1:
                raise ValidationError(f"field {k!r}: {s[k]!r} must be a whole number of at least 1",
                                      details={"field": k, "value": s[k]})
        if typ == "mltable" and isinstance(s["mini_batch_size"], int):
            # the parallel engine splits an MLTable by size (run() gets DataFrames, as Azure's tabular
            # inputs); a deployment's file count means the default size, an invocation's own is refused
            if body.get("mini_batch_size") is not None:
                raise ValidationError(f"field 'mini_batch_size': {body['mini_batch_size']!r} is a file count; an mltable "
                                      "input is split by size: give e.g. --mini-batch-size 10kb or 1MB",
                                      details={"field": "mini_batch_size", "value": str(body["mini_batch_size"])})
            s["mini_batch_size"] = "1MB"
        action = str(_norm_action(s["output_action"] or "append_row"))
        if action not in ("append_row", "summary_only"):
            raise ValidationError(f"field 'output_action': {s['output_action']!r} is not an output action; use "
                                  "append_row (the run() results into output_file_name) or summary_only",
                                  details={"field": "output_action", "value": str(s["output_action"])})
        if "output_file_name" in body and not body["output_file_name"] and action == "append_row":
            raise ValidationError("field 'output_file_name': empty; append_row collects every run() result into that "
                                  "file: give a file name (e.g. predictions.csv)", details={"field": "output_file_name"})
        if action == "append_row" and s["output_file_name"] is None:
            s["output_file_name"] = "predictions.csv"  # Azure's default (a flat BatchDeployment leaves it unset)
        if action == "append_row" and not s["output_file_name"]:
            raise ValidationError("field 'output_file_name': append_row needs an output file name",
                                  details={"field": "output_file_name"})
        if action == "append_row" and (problem := check_output_file_name(s["output_file_name"])):
            raise ValidationError(f"field 'output_file_name': {problem}",
                                  details={"field": "output_file_name", "value": str(s["output_file_name"])})
        out = dict((body.get("outputs") or {}).get(SCORE_OUTPUT) or {})
        out_type = str(out.get("type") or "uri_folder")
        if out_type not in ("uri_folder", "uri_file"):
            raise ValidationError(f"field 'outputs.{SCORE_OUTPUT}.type': {out_type!r}; the scoring output is a "
                                  "uri_folder (the results file inside it) or a uri_file (the results file itself)",
                                  details={"field": f"outputs.{SCORE_OUTPUT}.type", "value": out_type})
        if out_type == "uri_file" and action != "append_row":
            raise ValidationError(f"field 'outputs.{SCORE_OUTPUT}.type': uri_file needs output_action append_row (the "
                                  "predictions file); with summary_only the scoring script writes its own files: "
                                  "give a uri_folder", details={"field": f"outputs.{SCORE_OUTPUT}.type"})
        score: dict[str, Any] = {"type": out_type, "mode": "rw_mount"}
        if out.get("path"):
            score["path"] = out["path"]
            if out_type == "uri_file":  # (Azure's Output(type=uri_file, path=.../my.csv)): the predictions file itself
                head, _, tail = str(out["path"]).rstrip("/").rpartition("/")
                self._check_output_free(head, tail)
            elif action == "append_row":
                self._check_output_free(str(out["path"]), str(s["output_file_name"]))
        args = [f"--openaml_mode {rt['mode']}", f"--openaml_model_name {rt['model_name']}",
                f"--openaml_model_version {rt['model_version']}", f"--openaml_model_base {rt['model_base']}",
                "--openaml_model_dir ${{inputs.model}}"]
        if typ == "uri_file":
            args.append(f"--openaml_input_file {_basename(str(data_input['path']))}")
        if rt.get("scoring_script"):
            args.append(f"--openaml_scoring_script {rt['scoring_script']}")
        task: dict[str, Any] = {"type": "run_function", "code": rt["code"], "entry_script": DRIVER_SCRIPT,
                                "program_arguments": " ".join(args)}
        if action == "append_row":
            task["append_row_to"] = "${{outputs.score}}"
            task["program_arguments"] += f" --append_row_file_name {s['output_file_name']}"
        if spec.get("environment") is not None:
            task["environment"] = spec["environment"]
        job: dict[str, Any] = {
            "type": "parallel",
            "display_name": body.get("display_name") or f"{endpoint_name}-{dep['name']}",
            "experiment_name": body.get("experiment_name") or endpoint_name,
            "description": f"batch scoring job of deployment {dep['name']!r} of batch endpoint {endpoint_name!r}",
            "compute": spec.get("compute"),
            "tags": {ENDPOINT_TAG: endpoint_name, DEPLOYMENT_TAG: dep["name"], **(body.get("tags") or {})},
            "inputs": {"input_data": data_input, "model": {"type": rt["model_type"], "path": rt["model_ref"]}},
            "outputs": {SCORE_OUTPUT: score},
            "input_data": "${{inputs.input_data}}",
            "mini_batch_size": str(s["mini_batch_size"]),
            "resources": {"instance_count": s["instance_count"]},
            "max_concurrency_per_instance": s["max_concurrency_per_instance"],
            "error_threshold": s["error_threshold"] if s["error_threshold"] is not None else -1,
            "retry_settings": s["retry_settings"],
            "logging_level": str(s["logging_level"] or "info").upper(),
            "environment_variables": s["environment_variables"],
            "task": task,
        }
        if body.get("job_name"):
            job["name"] = body["job_name"]
        return job

    def _check_input(self, name: str, inp: dict[str, Any]) -> None:
        """The input exists, has the type it says, and a folder is not empty (refused before any job)."""
        if not inp.get("path"):
            raise ValidationError(f"field 'inputs.{name}.path': the invocation needs an input (a local path, an "
                                  "azureml:// URI or a data asset azureml:<name>:<version>)",
                                  details={"field": f"inputs.{name}.path"})
        errors = ResolveErrors()
        resolved = resolve_inputs(self.ctx, {name: inp}, errors)
        errors.raise_if_any()
        src = resolved[name]
        if inp["type"] == "uri_folder" and ("datastore" in src or src.get("local_path")):
            port, rel = _port_of(self.ctx, src)
            if not any(True for _ in _take(port.walk(rel), 1)):
                raise ValidationError(f"field 'inputs.{name}.path': {src['uri']} is an empty folder; there is "
                                      "nothing to score", details={"field": f"inputs.{name}.path"})

    def _invoke_pipeline(self, endpoint_name: str, dep: dict[str, Any], body: dict[str, Any]) -> JobRecord:
        """A pipeline deployment: a pipeline job running its component with the invocation's inputs."""
        spec = dep["spec"]
        settings = dict(spec.get("settings") or {})
        comp = spec.get("component")
        if comp is None:
            raise ValidationError(f"batch deployment {dep['name']!r}: job_definition deployments are not supported "
                                  "here yet; deploy the pipeline's component (component: azureml:<name>:<version>)",
                                  details={"field": "job_definition"})
        inputs = self._pipeline_inputs(dep["name"], str(comp), dict(body.get("inputs") or {}))
        outputs = dict(body.get("outputs") or {})
        node: dict[str, Any] = {"type": "pipeline", "component": comp,
                                "inputs": {k: f"${{{{parent.inputs.{k}}}}}" for k in inputs},
                                "outputs": {k: f"${{{{parent.outputs.{k}}}}}" for k in outputs}}
        job: dict[str, Any] = {
            "type": "pipeline",
            "display_name": body.get("display_name") or f"{endpoint_name}-{dep['name']}",
            "experiment_name": body.get("experiment_name") or endpoint_name,
            "tags": {ENDPOINT_TAG: endpoint_name, DEPLOYMENT_TAG: dep["name"]},
            "inputs": inputs, "outputs": outputs, "jobs": {dep["name"].replace("-", "_"): node},
            "settings": {k: v for k, v in settings.items() if k in ("default_compute", "default_datastore",
                                                                      "continue_on_step_failure")},
        }
        if body.get("job_name"):
            job["name"] = body["job_name"]
        return self.ctx.services["jobs"].submit(job)

    def _pipeline_inputs(self, dep_name: str, comp: str, given: dict[str, Any]) -> dict[str, Any]:
        """The invocation's inputs checked against the pipeline component's: ``input_data`` (what
        ``--input`` / ``input=`` give) goes to the component's input when it has exactly one.

        Raises:
            ValidationError: one message naming the inputs given that the component does not have, or
                the required ones not given, the component's inputs and how to pass them.
        """
        try:
            declared = dict(self.ctx.services["components"].resolve_reference(comp).get("inputs") or {})
        except OpenAMLError:
            return given  # the pipeline job's own resolution says what is wrong
        if "input_data" in given and "input_data" not in declared and len(declared) == 1:
            given = {next(iter(declared)): given.pop("input_data"), **given}
        unknown = [k for k in given if k not in declared]
        missing = [k for k, v in declared.items() if k not in given and not (isinstance(v, dict) and (
            v.get("optional") or v.get("default") is not None))]
        if not unknown and not missing:
            return given
        names = ", ".join(f"{k} ({v.get('type', '?') if isinstance(v, dict) else '?'})" for k, v in declared.items())
        said = []
        if unknown:
            said.append(f"it has no input {', '.join(repr('--input' if k == 'input_data' else k) for k in unknown)}")
        if missing:
            said.append(f"required input {', '.join(repr(k) for k in missing)} not given")
        raise ValidationError(
            f"batch deployment {dep_name!r} is a pipeline deployment with inputs: {names or 'none'}; "
            f"{'; '.join(said)}. Give them by name: --file inputs.yml (inputs: {{name: {{type, path}}}}) or SDK "
            "inputs={name: Input(...)}; --input maps to the component's input only when it has exactly one",
            details={"field": "inputs", "declared": list(declared), "unknown": unknown, "missing": missing})

    def list_jobs(self, endpoint_name: str, deployment_name: str | None = None) -> list[JobRecord]:
        """The endpoint's batch scoring jobs (of one deployment when ``deployment_name`` is given).

        Raises NotFoundError: unknown endpoint or deployment."""
        self.repo.get_endpoint(endpoint_name)
        if deployment_name:
            self.repo.get_deployment(endpoint_name, deployment_name)
        jobs = self.ctx.services["jobs"].list()
        return [j for j in jobs if (j.get("tags") or {}).get(ENDPOINT_TAG) == endpoint_name
                and (deployment_name is None or (j.get("tags") or {}).get(DEPLOYMENT_TAG) == deployment_name)]


# what an invocation may set (the body's own keys, and --set / params_override fields), as Azure's
# batch job: the deployment's settings for this job only, and the job's own name, experiment, tags
INVOKE_FIELDS = ("inputs", "outputs", "deployment_name", "job_name", "experiment_name", "display_name", "tags",
                 "mini_batch_size", "instance_count", "max_concurrency_per_instance", "output_action",
                 "output_file_name", "error_threshold", "logging_level", "retry_settings", "environment_variables")
_OVERRIDE_ALIASES = {"compute.instance_count": "instance_count", "resources.instance_count": "instance_count",
                     "settings.mini_batch_size": "mini_batch_size"}
_INT_FIELDS = ("instance_count", "max_concurrency_per_instance", "error_threshold")


def _merge_overrides(body: dict[str, Any]) -> dict[str, Any]:
    """The invocation body with ``params_override`` (``[{field: value}]``, ``--set field=value``)
    merged in: dotted keys (``retry_settings.max_retries``, the book's ``compute.instance_count``)
    set nested fields, digit strings of whole-number fields become ints.

    Raises:
        ValidationError: a field an invocation cannot set, naming it and the fields it can.
    """
    overrides = body.pop("params_override", None) or []
    if not isinstance(overrides, list):
        overrides = [overrides]
    for top in ("compute", "resources", "settings"):  # --set compute.instance_count=2 arrives nested
        if isinstance(body.get(top), dict):
            overrides = [{f"{top}.{k}": v} for k, v in body.pop(top).items()] + list(overrides)
    for o in overrides:
        if not isinstance(o, dict):
            raise ValidationError(f"field 'params_override': {o!r} is not a {{field: value}} mapping",
                                  details={"field": "params_override"})
        for key, value in o.items():
            key = _OVERRIDE_ALIASES.get(str(key), str(key))
            top, _, rest = key.partition(".")
            if rest and top in ("retry_settings", "environment_variables", "tags"):
                body[top] = {**(body.get(top) or {}), rest: value}
            elif rest and top == "settings":  # a type: model deployment's settings.<field>
                body[rest] = value
            else:
                body[key] = value
    unknown = sorted(k for k in body if k not in INVOKE_FIELDS)
    if unknown:
        raise ValidationError(
            f"field {unknown[0]!r}: an invocation cannot set {', '.join(repr(u) for u in unknown)}; the fields it can "
            f"set (--set field=value, params_override=[{{field: value}}]): "
            f"{', '.join(f for f in INVOKE_FIELDS if f not in ('inputs', 'outputs'))}",
            details={"field": unknown[0], "allowed": list(INVOKE_FIELDS)})
    for k in _INT_FIELDS:
        if isinstance(body.get(k), str) and body[k].strip().lstrip("-").isdigit():
            body[k] = int(body[k])
    return body


def _basename(path: str) -> str:
    """The file name of an input path (a URI or an ``azureml:`` data reference: the asset's name)."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return tail.split(":")[1] if tail.startswith("azureml:") and ":" in tail else tail.replace(" ", "_")


def _take(it: Any, n: int) -> Any:
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


def _scoring_script_problem(path: Path) -> str | None:
    """What makes ``path`` unusable as a batch scoring script: a syntax error, or no ``run``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({exc})"
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    # imported (``from helper import run``, ``from helper import *``: bound when the module runs)
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    if "run" not in names and "*" not in names:
        return ("defines no run(mini_batch) function; a batch scoring script defines init() (optional, once per "
                "worker) and run(mini_batch) (per mini-batch, returning a list or a DataFrame)")
    return None


def _check_endpoint_name(given: str | None, endpoint_name: str, name: str) -> None:
    if given and given != endpoint_name:
        raise ValidationError(f"deployment {name!r} names endpoint_name {given!r} but is created under batch endpoint "
                              f"{endpoint_name!r}", details={"field": "endpoint_name"})


def _validate(entity: Any, spec: dict[str, Any], kind: str) -> Any:
    clean = {k: v for k, v in spec.items() if k not in entity._server_fields}
    try:
        return entity.model_validate(clean)
    except pydantic.ValidationError as exc:
        raise validation_error_from_pydantic(exc, source=None, lines=None, kind=kind) from None
