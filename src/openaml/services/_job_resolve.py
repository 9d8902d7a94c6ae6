"""Resolving a submitted job's references before anything runs: compute, environment, inputs,
outputs, code. Every problem is reported at once, naming the field and the value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from openaml._templates import check_references
from openaml.constants import DATA_TYPES, JOB_AREA, MODEL_TYPES, UPLOAD_AREA
from openaml.datastores import (
    DatastorePort,
    LocalDatastore,
    parse_datastore_uri,
    parse_job_output_uri,
    validate_mltable_folder,
)
from openaml.errors import NotFoundError, OpenAMLError, ValidationError
from openaml.services._context import WorkspaceContext

__all__ = ["resolve_inputs", "resolve_outputs", "check_command", "resolve_code", "ResolveErrors", "component_problems"]

_REMOTE = re.compile(r"^(https?|wasbs?|abfss?|adl|s3|gs)://", re.I)


class ResolveErrors:
    """Collects problems so one submission reports all of them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def warn(self, field: str, message: str) -> None:
        """Something Azure ML accepts that the user may not mean: reported, not refused."""
        self.warnings.append(f"field '{field}': {message}")

    def raise_if_any(self, source: str | None = None) -> None:
        if not self.items:
            return
        prefix = f"{source}: " if source else ""
        text = "; ".join(f"field '{f}': {m}" for f, m in self.items)
        raise ValidationError(prefix + text, details={"field": self.items[0][0], "problems": [
            {"field": f, "message": m} for f, m in self.items]})


def check_command(command: str, inputs: dict[str, Any], outputs: dict[str, Any], errors: ResolveErrors,
                  extra_roots: tuple[str, ...] = ()) -> None:
    """Add to ``errors`` what is wrong in a job's ``command``: empty (Azure ML requires one), or
    ``${{...}}`` expressions naming inputs/outputs the job does not declare or supply."""
    if not (command or "").strip():
        errors.add("command", "is empty; give the shell command the job runs (e.g. command: python train.py)")
        return
    supplied = [k for k, v in inputs.items() if _has_value(v)]
    for problem in check_references(command, inputs=inputs, outputs=outputs, supplied=supplied,
                                    extra_roots=extra_roots):
        errors.add("command", problem)


def component_problems(comp: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong in a command component on its own, as ``(field, message)`` pairs: ``${{...}}``
    expressions in ``command`` naming inputs or outputs it does not declare, and input defaults
    outside their type, ``enum`` or ``min``/``max`` (Azure ML rejects both when the component is
    registered or a pipeline using it is submitted)."""
    inputs = comp.get("inputs") or {}
    out: list[tuple[str, str]] = []
    if "command" in comp and not str(comp["command"] or "").strip():
        out.append(("command", "is empty; give the shell command the component runs (e.g. command: python "
                               "train.py)"))
    for problem in check_references(comp.get("command") or "", inputs=inputs, outputs=comp.get("outputs") or {},
                                    supplied=list(inputs)):
        out.append(("command", problem))
    for k, decl in inputs.items():
        decl = decl or {}
        if decl.get("default") is None or decl.get("type") not in ("string", "integer", "number", "boolean"):
            continue
        bad = _check_literal(decl["type"], decl["default"], decl)
        if bad:
            out.append((f"inputs.{k}.default", f"{bad}; fix the default or its bounds"))
    return out


def _bound_text(b: Any) -> str:
    """A bound as written (``10`` not ``10.0``); no bound on that side is ``any``."""
    if b is None:
        return "any"
    return str(int(b)) if isinstance(b, float) and b.is_integer() else str(b)


def _has_value(inp: dict[str, Any]) -> bool:
    return any(inp.get(k) is not None for k in ("path", "value", "default"))


def resolve_code(ctx: WorkspaceContext, code: str | None, errors: ResolveErrors) -> str | None:
    if not code:
        return None
    if code.startswith("openaml-code:"):
        digest = code.split(":", 1)[1]
        p = ctx.layout.code / digest
        files = ctx.services.get("files")
        if re.fullmatch(r"[0-9a-f]{64}", digest) and not p.is_dir() and files is not None:
            files.try_pull(p)  # uploaded to another server of the workspace
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not p.is_dir():
            errors.add("code", f"code snapshot {digest!r} was not uploaded")
            return None
        return str(p)
    parsed = parse_datastore_uri(code)
    if parsed is not None:
        try:
            p = ctx.services["datastores"].resolve(code)
        except OpenAMLError as exc:
            errors.add("code", exc.message)
            return None
        if not p.exists():
            errors.add("code", f"{code} does not exist")
            return None
        return str(p)
    errors.add("code", f"code {code!r} must be a local folder (the SDK/CLI upload it) or a datastore URI; "
                       "git URLs and code assets are not supported here")
    return None


def _source_for(ctx: WorkspaceContext, field: str, typ: str, path: str,
                errors: ResolveErrors) -> tuple[dict[str, Any] | None, str]:
    """(where the runner finds an input, canonical uri): ``{"datastore": <definition>, "path": <p>}``
    for files of a datastore (the runner opens its port), ``{"local_path": <p>}`` for a model or
    an MLflow run's artifacts, None for a remote URL or an error (added to ``errors``)."""
    svc = ctx.services
    try:
        if path.startswith("azureml:") and not path.startswith("azureml://") or path.startswith(
                ("azureml://data/", "azureml://models/", "azureml://registries/", "azureml://locations/")) or \
                path.startswith("/subscriptions/"):
            if typ in MODEL_TYPES or "/models/" in path:
                model = svc["models"].resolve_reference(path)
                return {"local_path": str(model["local_path"])}, path
            asset = svc["data"].resolve_reference(path)
            uri = asset["path"]
            if _REMOTE.match(uri):
                return None, uri
            return _in_datastore(ctx, uri), uri
        if parse_datastore_uri(path) is not None or parse_job_output_uri(path) is not None:
            return _in_datastore(ctx, path), path
        if path.startswith("runs:/"):
            run_id, _, rel = path[len("runs:/"):].partition("/")
            local, _logged = ctx.tracking.resolve_run_path(run_id, rel)
            return {"local_path": str(local)}, path
        if _REMOTE.match(path):
            return None, path
    except OpenAMLError as exc:
        errors.add(field, exc.message)
        return None, path
    except Exception as exc:  # noqa: BLE001 - e.g. an MLflow run that does not exist
        errors.add(field, f"{path}: {exc}")
        return None, path
    errors.add(field, f"{path!r} is a local path that was not uploaded; submit with the openaml CLI or SDK, "
                      "which upload local paths, or use an azureml:// URI")
    return None, path


def _in_datastore(ctx: WorkspaceContext, uri: str) -> dict[str, Any]:
    """``{"datastore", "path"}`` of a datastore or job-output URI; ``{"local_path"}`` for a job's
    default artifact output (MLflow's artifact store, not a datastore)."""
    located = ctx.services["datastores"].locate(uri)
    if located is None:
        return {"local_path": str(ctx.services["datastores"].resolve(uri))}
    port, rel = located
    return {"datastore": port.spec(), "path": rel}


def _port_of(ctx: WorkspaceContext, source: dict[str, Any]) -> tuple[DatastorePort, str]:
    if "datastore" in source:
        return ctx.services["datastores"].port(source["datastore"]["name"]), source["path"]
    local = Path(source["local_path"])
    return LocalDatastore("local", {"path": str(local.parent)}), local.name


def resolve_inputs(ctx: WorkspaceContext, inputs: dict[str, dict[str, Any]], errors: ResolveErrors) -> dict[str, Any]:
    """Runner view of inputs: literals as ``{"value"}``; data and models as ``{"type", "mode", "uri"}``
    plus where the runner finds the files: ``{"datastore": <non-secret definition>, "path": <path in
    it>}`` (the runner opens the datastore's port and mounts or downloads per ``mode``), or
    ``{"local_path"}`` for models and MLflow run artifacts. Existence and file/folder type are
    checked through the port now, so a wrong input fails the submission."""
    out: dict[str, Any] = {}
    for name, inp in inputs.items():
        field = f"inputs.{name}"
        typ = inp.get("type", "uri_folder")
        if typ not in DATA_TYPES + MODEL_TYPES:
            value = inp.get("value", inp.get("default"))
            if value is not None:
                problem = _check_literal(typ, value, inp)
                if problem:
                    errors.add(field, problem)
            out[name] = {"type": typ, "value": value}
            continue
        path = inp.get("path")
        if path is None:
            if not inp.get("optional"):
                errors.add(field, "a data input needs 'path'")
            out[name] = {"type": typ, "value": None}
            continue
        mode = inp.get("mode") or "ro_mount"
        source, uri = _source_for(ctx, field, typ, str(path), errors)
        if source is None and mode != "direct" and _REMOTE.match(uri):
            errors.add(field, f"{uri} is a remote URL; openaml does not download remote data at run time. "
                              "Use a local copy (e.g. --set inputs.<name>.path=./file) or mode: direct")
        if source is not None:
            try:
                _check_input(ctx, field, typ, str(path), uri, source, errors)
            except OpenAMLError as exc:
                errors.add(field, exc.message)
        out[name] = {"type": typ, "mode": mode, "uri": uri, **(source or {"local_path": None})}
    return out


def _check_input(ctx: WorkspaceContext, field: str, typ: str, path: str, uri: str, source: dict[str, Any],
                 errors: ResolveErrors) -> None:
    port, rel = _port_of(ctx, source)
    if not port.exists(rel):
        via = f" (the path of {path})" if path != uri else ""
        errors.add(field, f"{uri}{via} does not exist; write it first (e.g. as a job's output) or "
                          "point the input at an existing path")
    elif typ == "uri_file" and not port.isfile(rel):
        errors.add(field, f"{uri} is a folder but the input type is uri_file; use type: uri_folder")
    elif typ == "uri_folder" and not port.isdir(rel):
        errors.add(field, f"{uri} is a file but the input type is uri_folder; use type: uri_file")
    elif typ == "mltable" and port.has_local_path:
        # as `data create` does: a malformed MLTable folder is refused before anything runs
        try:
            validate_mltable_folder(port.local_path(rel), label=uri)
        except ValidationError as exc:
            errors.add(field, exc.message)


def _check_literal(typ: str, value: Any, inp: dict[str, Any]) -> str | None:
    from openaml.entities._io import numeric

    value = numeric(value, typ)  # numeric strings are numbers, as Azure ML reads them
    ok = {"string": lambda v: isinstance(v, str) or isinstance(v, (int, float, bool)),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "boolean": lambda v: isinstance(v, bool)}.get(typ)
    if ok is not None and not ok(value):
        return f"value {value!r} is not {'an' if typ == 'integer' else 'a'} {typ}"
    if inp.get("enum") and value not in inp["enum"]:
        return f"value {value!r} is not one of {inp['enum']}"
    for bound, cmp in (("min", lambda v, b: v < b), ("max", lambda v, b: v > b)):
        if inp.get(bound) is not None and isinstance(value, (int, float)) and cmp(value, inp[bound]):
            lo, hi = (_bound_text(inp.get(b)) for b in ("min", "max"))
            return f"value {value!r} is outside [{lo}, {hi}]"
    return None


def resolve_outputs(ctx: WorkspaceContext, job_name: str, outputs: dict[str, dict[str, Any]],
                    errors: ResolveErrors, *, parent: str | None = None) -> dict[str, Any]:
    """Runner view of outputs: where each lands and how it registers: ``uri``, the datastore's
    non-secret definition and the ``path`` in it (the runner ``put``s the output there when the job
    succeeds), ``local_path`` where the datastore has one (model and data registration read it).

    ``parent``: the job this one runs in (a pipeline's step, a sweep's trial), set by the server;
    the job may write under its own ``azureml/<job>/`` and under its parent's and their parents'
    (:func:`job_area_problem`), no other job's."""
    out: dict[str, Any] = {}
    default_ds = ctx.services["datastores"].default_name()  # workspaceblobstore unless another is_default
    for name, o in outputs.items():
        field = f"outputs.{name}"
        typ = o.get("type") or "uri_folder"
        path = o.get("path")
        if path:
            path = str(path).replace("${{name}}", job_name).replace("${{default_datastore}}", default_ds)
            if parse_datastore_uri(path) is None:
                errors.add(field, f"path {path!r} must be an azureml://datastores/<name>/paths/<path> URI")
                continue
        else:
            rel = f"{JOB_AREA}/{job_name}/{name}/"
            if typ == "uri_file":
                rel += name
            # ``datastore: azureml:<name>`` as azure-ai-ml writes it, or the bare name
            ds = ctx.services["datastores"].canonical_name(o.get("datastore")) or default_ds
            path = f"azureml://datastores/{ds}/paths/{rel}"
        try:
            located = ctx.services["datastores"].locate(path.rstrip("/") if typ != "uri_file" else path)
            assert located is not None  # a datastore URI always has a port
            port, rel = located
            if rel.split("/", 1)[0] == UPLOAD_AREA:
                # uploads are kept there by content hash: a file written there would change every data
                # asset and input of that content, and the next upload of it would be served the change
                raise ValidationError(f"path {path!r} is in {UPLOAD_AREA}/, where uploaded files are kept by "
                                      "content hash for the data assets and inputs that point at them; write "
                                      "the output to another folder of the datastore")
            problem = job_area_problem(ctx, path, rel, typ, job_name, name, parent, port.name)
            if not problem and port.has_local_path:  # a link in the datastore that leads into azureml/<X>/
                real = _resolved_rel(port, rel)
                if real != rel:
                    problem = job_area_problem(ctx, path, real, typ, job_name, name, parent, port.name)
            if problem:
                raise ValidationError(problem)
            if typ == "uri_file" and not rel:
                raise ValidationError(f"path {path!r} of a uri_file output needs a file name")
            if typ == "uri_file" and port.isdir(rel):  # found now, not when the finished job's output is put
                raise ValidationError(f"path {path!r} is an existing folder; a uri_file output needs a file path")
            if typ != "uri_file" and port.isfile(rel):
                raise ValidationError(f"path {path!r} is an existing file; a {typ} output needs a folder path "
                                      "(or declare the output as uri_file)")
            local = str(port.local_path(rel)) if port.has_local_path else None
        except OpenAMLError as exc:
            errors.add(field, exc.message)
            continue
        entry: dict[str, Any] = {"type": typ, "mode": o.get("mode") or "rw_mount", "uri": path,
                                 "datastore": port.spec(), "path": rel, "local_path": local}
        if typ == "uri_file":
            entry["file_name"] = rel.rsplit("/", 1)[-1]
        if o.get("name"):
            entry["register"] = {"name": o["name"], "version": o.get("version"), "description": o.get("description")}
            if o.get("version") is not None:
                _check_version_free(ctx, field, typ, o["name"], str(o["version"]), errors)
        out[name] = entry
    return out


def job_area_problem(ctx: WorkspaceContext, path: str, rel: str, typ: str, job_name: str, output: str,
                     parent: str | None, datastore: str) -> str | None:
    """Why output ``output`` of job ``job_name`` may not be written to ``rel`` (its datastore path,
    as normalised by the datastore's ``locate``: no ``.``, ``..`` or empty parts), or None.

    ``azureml/<X>/`` of every datastore is job X's output folder (``azureml/<job>/<output>/`` when an
    output has no ``path``). Data assets and models registered from a finished job's outputs, and the
    RAI gate's trust in a built-in step's score card, rely on those files never changing after the job
    ended; so only job X itself, and the jobs it runs in (``parent``, its parent, ...: a pipeline step
    may be bound to its pipeline's output folder), may write there. For the same reason an output may
    not be the ``azureml/`` folder itself, nor the datastore's root folder, which hold every job's folder.
    """
    parts = rel.split("/") if rel else []
    fix = (f"omit path to get {JOB_AREA}/{job_name}/{output}/, or write elsewhere on the datastore, e.g. "
           f"azureml://datastores/{datastore}/paths/<folder>/")
    if not parts:
        if typ == "uri_file":
            return None  # refused next: a uri_file output needs a file name
        return (f"path {path!r} is the root folder of datastore {datastore!r}, which holds every job's output "
                f"folder ({JOB_AREA}/<job>/) and the uploaded files ({UPLOAD_AREA}/); {fix}")
    if parts[0] != JOB_AREA:
        return None
    if len(parts) == 1:
        return (f"path {path!r} is the {JOB_AREA}/ folder, which holds every job's output folder "
                f"({JOB_AREA}/<job>/); {fix}")
    owner = parts[1]
    if owner == job_name or owner in job_ancestors(ctx, parent):
        return None
    return (f"path {path!r} is in {JOB_AREA}/{owner}/, the output folder of job {owner!r}; a job may write there "
            "only when it is that job or runs in it (a pipeline's step), since a finished job's outputs never "
            f"change (data assets, models and RAI score cards registered from them rely on that); {fix}")


def _resolved_rel(port: DatastorePort, rel: str) -> str:
    """``rel`` in a datastore with a local folder, its links followed (links that leave the folder
    are refused by ``local_path``); ``rel`` itself when it cannot be resolved."""
    try:
        root = port.local_path("").resolve()
        real = port.local_path(rel).resolve()
        return "" if real == root else real.relative_to(root).as_posix()
    except (OpenAMLError, OSError, ValueError):
        return rel


def job_ancestors(ctx: WorkspaceContext, parent: str | None) -> list[str]:
    """``parent``, its parent, and so on up to a top-level job (read from the job rows; a parent
    not recorded yet, as a pipeline being validated, ends the chain after itself)."""
    chain: list[str] = []
    while parent and parent not in chain and len(chain) < 20:
        chain.append(parent)
        try:
            parent = ctx.store.get_job(parent).get("parent_name")
        except NotFoundError:
            break
    return chain


def ensure_found(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except NotFoundError:
        raise


def _check_version_free(ctx: WorkspaceContext, field: str, typ: str, name: str, version: str,
                        errors: ResolveErrors) -> None:
    """An output registered as ``name:version`` must not exist yet (versions are immutable)."""
    try:
        if typ in MODEL_TYPES:
            ctx.services["models"].resolve_reference(f"azureml:{name}:{version}")
        else:
            ctx.services["data"].resolve_reference(f"azureml:{name}:{version}")
    except NotFoundError:
        return
    except OpenAMLError:
        return
    kind = "model" if typ in MODEL_TYPES else "data asset"
    errors.add(field, f"{kind} {name}:{version} already exists and versions are immutable; "
                      "omit version to register the next one")
