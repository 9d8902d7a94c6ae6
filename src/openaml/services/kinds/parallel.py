"""Parallel jobs (azure-ai-ml ``ParallelJob``, YAML ``type: parallel``; spec 5.3): one runner on a
compute slot whose command is the batch engine (:mod:`openaml.parallel._openaml_parallel`).

Validation refuses bad input before anything is stored, naming the field: ``mini_batch_size`` (0,
malformed, a size for a folder input), ``input_data`` (not ``${{inputs.x}}``, a missing input, an
empty folder), ``task.type`` (only ``run_function``), ``task.entry_script`` (missing, or without a
top-level ``run``), ``task.append_row_to`` (not ``${{outputs.y}}``). It then stores the job in
Azure's shape and, in the runtime, what the runner runs: a code snapshot of ``task.code`` plus the
driver script (content-addressed: ``<code>/<sha256>``), and the command
``python _openaml_parallel_driver.py --config <base64 json> --input-data ${{inputs.x}}
[--append-row-to ${{outputs.y}}] -- <program_arguments>``, run in the job's own environment.
"""

from __future__ import annotations

import ast
import base64
import glob
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import JobStatus
from openaml.entities._base import validation_error_from_pydantic
from openaml.parallel._entity import (
    DEFAULTS,
    ParallelJob,
    append_row_file_name,
    check_output_file_name,
    parse_mini_batch_size,
)
from openaml.services._job_resolve import ResolveErrors, check_command, resolve_code, resolve_inputs, resolve_outputs
from openaml.services.kinds import JobKind, JobPlan

__all__ = ["ParallelKind", "DRIVER_NAME", "engine_files"]

DRIVER_NAME = "_openaml_parallel_driver.py"
_DRIVER_SOURCE = Path(__file__).resolve().parents[2] / "parallel" / "_driver.py"
ENGINE_PACKAGE = "_openaml_parallel"  # the engine's modules, shipped beside the entry script
_ENGINE_SOURCE = _DRIVER_SOURCE.parent / ENGINE_PACKAGE


def engine_files() -> dict[str, bytes]:
    """The files the engine ships into a job's code (relative path -> content): its entry script
    (``_openaml_parallel_driver.py``) and its package (``_openaml_parallel/*.py``)."""
    files = {DRIVER_NAME: _DRIVER_SOURCE.read_bytes()}
    for f in sorted(_ENGINE_SOURCE.glob("*.py")):
        files[f"{ENGINE_PACKAGE}/{f.name}"] = f.read_bytes()
    return files
# the engine's log lines that become job warnings (driver.FAILED_WARNING, plan.MULTI_LINE_WARNING)
ENGINE_WARNINGS = ("warning: completed with failures:", "warning: quoted line break:")
_REF = re.compile(r"^\s*\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
_SERVER_FIELDS = ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time", "error",
                  "exit_code", "log_tail", "output_uris", "status_history", "services", "warnings")


def _ref(value: str | None, root: str) -> str | None:
    m = _REF.match(value or "")
    return m.group(2) if m and m.group(1) == root else None


def entry_script_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a parallel entry script (missing, not Python, no top-level ``run``), or None."""
    if not path.is_file():
        return "does not exist in the code folder"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        return f"is not valid Python: {exc}"
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    if "run" not in names and "*" not in names:  # (a star import may bind it)
        return ("defines no run() function; a parallel entry script defines init() (optional, once per worker) and "
                "run(mini_batch) (per mini-batch, returning the rows to append)")
    return None


def prs_flag_problems(program_arguments: str) -> list[tuple[str, str]]:
    """Bad values of the Azure PRS flags the engine reads from ``program_arguments``:
    ``--first_task_creation_timeout`` (seconds > 0), ``--allowed_failed_count`` (an integer >= -1,
    -1: any) and ``--allowed_failed_percent`` (0 to 100, or -1)."""
    import shlex

    try:
        args = shlex.split(program_arguments)
    except ValueError:
        return []
    rules = {"--first_task_creation_timeout": (float, lambda v: v > 0, "a number of seconds above 0"),
             "--allowed_failed_count": (int, lambda v: v >= -1, "an integer: failed mini-batches allowed (-1: any)"),
             "--allowed_failed_percent": (float, lambda v: v == -1 or 0 <= v <= 100,
                                          "a percentage from 0 to 100 of the mini-batches (-1: any)")}
    out: list[tuple[str, str]] = []
    for i, a in enumerate(args):
        flag, _, value = a.partition("=")
        if flag not in rules:
            continue
        if not _:
            value = args[i + 1] if i + 1 < len(args) else ""
        kind, ok, what = rules[flag]
        try:
            good = ok(kind(value))
        except ValueError:
            good = False
        if not good:
            out.append((flag, f"is {value!r}; give {what}"))
    return out


def tabular_plan(folder: Path, table: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The driver's view of an MLTable: ``{"format", "files" (relative to the folder, in the order of
    its ``paths``, a folder's or a pattern's files sorted by name),
    "delimiter", "header", "multi_line" (read_delimited's ``support_multi_line: true``: mini-batches end
    at records' ends, never inside a quoted field)}``, or (None, problem)."""
    fmt, opts = "csv", dict[str, Any]()
    ignored: list[str] = []
    for t in table.get("transformations") or []:
        if isinstance(t, dict) and "read_delimited" in t:
            fmt, opts = "csv", t["read_delimited"] or {}
        elif isinstance(t, dict) and "read_parquet" in t:
            fmt, opts = "parquet", t["read_parquet"] or {}
        elif t in ("read_delimited", "read_parquet"):
            fmt = "csv" if t == "read_delimited" else "parquet"
        elif isinstance(t, dict) and ("read_json_lines" in t or "read_delta_lake" in t):
            return None, f"MLTable transformation {next(iter(t))} is not supported by parallel jobs (csv and parquet are)"
        else:  # take, drop_columns, convert_column_types...: not applied to the mini-batches (refused)
            ignored.append(str(next(iter(t))) if isinstance(t, dict) and t else str(t))
    files: list[str] = []
    for p in table.get("paths") or []:
        for key, val in p.items():
            target = (folder / str(val)).resolve()
            if key == "file":
                files.append(os.path.relpath(target, folder))
            elif key == "folder":
                files += sorted(os.path.relpath(f, folder) for f in target.rglob("*")
                                if f.is_file() and f.name != "MLTable")
            elif key == "pattern":
                files += sorted(os.path.relpath(f, folder) for f in glob.glob(str(folder / str(val)), recursive=True)
                                if Path(f).is_file())
    if not files:
        return None, "the MLTable's paths name no files"
    header = str(opts.get("header", "all_files_same_headers")) != "no_header"
    # the MLTable's path order (a folder's or pattern's files sorted within it), each file once
    out: dict[str, Any] = {"format": fmt, "files": list(dict.fromkeys(files)), "delimiter": opts.get("delimiter", ","),
                           "header": header}
    if str(opts.get("support_multi_line", False)).lower() == "true":  # records end outside quoted fields only
        out["multi_line"] = True
    if ignored:
        out["ignored"] = ignored
    return out, None


def _check_instances(ctx: Any, compute: str | None, count: Any, errors: ResolveErrors) -> None:
    """``resources.instance_count`` at most the compute's ``max_instances`` (Azure refuses more nodes
    than the cluster has; here every instance's workers run on the compute's machine)."""
    if not compute or not isinstance(count, int):
        return
    try:
        slots = ctx.services["computes"].slots(compute)
    except Exception:  # noqa: BLE001 - an unknown compute is said by its own check
        return
    if count > slots:
        errors.add("resources.instance_count", f"{count} instances; compute {compute!r} has at most {slots} "
                                               f"(its max_instances): give at most {slots}, or a larger compute")


def _table_columns(folder: Path, plan: dict[str, Any]) -> list[str] | None:
    """The column names of a table's first file (its csv header, its parquet schema), or None when
    they cannot be read here (no header, no pyarrow, an unreadable file: the job itself says)."""
    if not plan.get("files"):
        return None
    first = folder / plan["files"][0]
    try:
        if plan.get("format") == "parquet":
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(str(first)).names]
        if not plan.get("header", True):
            return None
        import csv

        with open(first, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh, delimiter=str(plan.get("delimiter") or ",")), None)
    except Exception:  # noqa: BLE001
        return None


class ParallelKind(JobKind):
    type = "parallel"
    runs_on_compute = True

    def validate(self, spec: dict[str, Any], *, source: str | None, name: str) -> JobPlan:
        """Raises ValidationError naming every field with a problem before anything is stored."""
        spec = {k: v for k, v in spec.items() if k not in _SERVER_FIELDS}
        try:
            job = ParallelJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="parallel job") from None
        errors = ResolveErrors()
        compute = self.core.compute_name(job.compute, errors)
        _check_instances(self.ctx, compute, job.resources.instance_count if job.resources else 1, errors)
        data = job.model_dump(mode="json", exclude_none=True)
        inputs_raw, outputs_raw = data.get("inputs", {}), data.get("outputs", {})
        task = job.task
        if task is None:
            errors.add("task", "is missing; give task: {type: run_function, code, entry_script, environment}")
            errors.raise_if_any(source)
        assert task is not None
        if task.type != "run_function":
            errors.add("task.type", f"{task.type!r} is not a parallel task type; the only one is run_function")
        runner_inputs = resolve_inputs(self.ctx, inputs_raw, errors)
        runner_outputs = resolve_outputs(self.ctx, name, outputs_raw, errors, parent=job.parent_job_name)
        data_name = _ref(job.input_data, "inputs")
        if not job.input_data:
            errors.add("input_data", "is missing; give input_data: ${{inputs.<name>}} naming the input to split")
        elif data_name is None:
            errors.add("input_data", f"{job.input_data!r} must be ${{{{inputs.<name>}}}} naming one of the job's inputs")
        elif data_name not in inputs_raw:
            errors.add("input_data", f"names input {data_name!r}, which the job does not declare; its inputs: "
                                     f"{', '.join(sorted(inputs_raw)) or 'none'}")
        append_to = None
        if task.append_row_to:
            append_to = _ref(task.append_row_to, "outputs")
            if append_to is None or append_to not in outputs_raw:
                errors.add("task.append_row_to", f"{task.append_row_to!r} must be ${{{{outputs.<name>}}}} naming one "
                                                 f"of the job's outputs ({', '.join(sorted(outputs_raw)) or 'none'})")
                append_to = None
        if task.program_arguments:
            check_command(task.program_arguments, inputs_raw, outputs_raw, errors)
            errors.items = [("task.program_arguments" if f == "command" else f, m) for f, m in errors.items]
            given, file_name = append_row_file_name(task.program_arguments)
            problem = check_output_file_name(file_name) if given else None
            if problem:
                errors.add("task.program_arguments", f"--append_row_file_name {problem}")
            for flag, problem in prs_flag_problems(task.program_arguments):
                errors.add("task.program_arguments", f"{flag} {problem}")
        code_dir = resolve_code(self.ctx, task.code, errors)
        errors.items = [("task.code" if f == "code" else f, m) for f, m in errors.items]
        if not task.entry_script:
            errors.add("task.entry_script", "is missing; name the script with init() and run(mini_batch)")
        elif code_dir is not None or not task.code:
            base = Path(code_dir) if code_dir else None
            problem = "needs task.code (the folder holding it)" if base is None else \
                entry_script_problem(base / task.entry_script)
            if problem:
                errors.add("task.entry_script", f"{task.entry_script!r} {problem}")
        env = self.core.runner_environment(data.get("task", {}).get("environment"), errors, field="task.environment")
        cfg = self._engine_config(job, data_name, runner_inputs, outputs_raw, append_to, errors)
        data_in = runner_inputs.get(data_name or "") or {}
        if data_in.get("mode") in ("direct", "eval_mount", "eval_download"):
            # Azure's engine reads a direct (or eval_*) input_data itself; ours reads files: mounted read-only
            cfg.setdefault("notes", []).append(f"input {data_name!r} (input_data) has mode {data_in['mode']}: the "
                                               "engine reads it as ro_mount (its files, read-only)")
            data_in["mode"] = "ro_mount"
        errors.raise_if_any(source)
        snapshot = self._snapshot(code_dir)
        cmd = (f"python {DRIVER_NAME} --config {base64.b64encode(json.dumps(cfg).encode()).decode()} "
               f"--input-data ${{{{inputs.{data_name}}}}}")
        if append_to:
            cmd += f" --append-row-to ${{{{outputs.{append_to}}}}}"
        cmd += " --" + (f" {task.program_arguments}" if task.program_arguments else "")
        runtime: dict[str, Any] = {
            "inputs": runner_inputs, "outputs": runner_outputs, "code_dir": snapshot, "environment": env,
            "timeout": None, "command": cmd, "resources": {},
        }
        said = list(env.get("warnings") or [])
        if said:
            runtime["warnings"] = said
            data.setdefault("properties", {})["openaml.warnings"] = "; ".join(said)
        data["compute"] = compute
        return JobPlan(data=data, experiment=job.experiment_name or "Default", compute=compute,
                       display_name=job.display_name, tags={"openaml.compute": compute, **job.tags},
                       runtime=runtime, parent_name=job.parent_job_name, parent_run_id=job.parent_job_name, entity=job)

    def _engine_config(self, job: ParallelJob, data_name: str | None, inputs: dict[str, Any],
                       outputs: dict[str, Any], append_to: str | None, errors: ResolveErrors) -> dict[str, Any]:
        """The driver's settings (Azure's defaults where the job gives none) and its view of the input."""
        retry = job.retry_settings
        task = job.task
        assert task is not None
        cfg: dict[str, Any] = {
            "entry_script": task.entry_script,
            "instance_count": job.resources.instance_count if job.resources else 1,
            "max_concurrency": job.max_concurrency_per_instance or DEFAULTS["max_concurrency_per_instance"],
            "error_threshold": DEFAULTS["error_threshold"] if job.error_threshold is None else job.error_threshold,
            "mini_batch_error_threshold": DEFAULTS["mini_batch_error_threshold"]
            if job.mini_batch_error_threshold is None else job.mini_batch_error_threshold,
            "max_retries": DEFAULTS["max_retries"] if retry is None or retry.max_retries is None else retry.max_retries,
            "timeout": DEFAULTS["timeout"] if retry is None or retry.timeout is None else retry.timeout,
            "logging_level": job.logging_level or DEFAULTS["logging_level"],
            "output_file_name": DEFAULTS["output_file_name"],
            "partition_keys": job.partition_keys or [],
        }
        if append_to:
            cfg["append_row_type"] = outputs[append_to].get("type", "uri_folder")
        endpoint, deployment = job.tags.get("openaml.batch_endpoint"), job.tags.get("openaml.batch_deployment")
        if endpoint and deployment and self._warm_pool_allowed():
            # a batch deployment's job: its workers may fork from its warm pool (runner._pool)
            cfg["warm_pool"] = {"endpoint": endpoint, "deployment": deployment}
        inp = inputs.get(data_name or "") or {}
        typ = inp.get("type")
        local = self._local_path(inp)
        # a uri_file with a file count (or none): a file input, run() gets [path] (Azure); with a size: a table
        file_input = typ == "uri_file" and (job.mini_batch_size is None or
                                            parse_mini_batch_size(job.mini_batch_size)[0] == "count")
        if typ == "uri_file" and local is not None and local.is_file() and local.stat().st_size == 0:
            errors.add("input_data", f"input {data_name!r} ({inp.get('uri')}) is an empty file: nothing to score")
        if typ == "uri_folder" or file_input:
            if job.partition_keys:
                errors.add("partition_keys", f"apply to mltable inputs only; input_data is a {typ}")
            kind, size = self._size(job.mini_batch_size, DEFAULTS["mini_batch_size_files"], errors)
            if kind == "bytes":
                errors.add("mini_batch_size", f"{job.mini_batch_size!r} is a size, which applies to tabular inputs "
                                              "(mltable, or a csv/parquet uri_file); for a uri_folder give a file "
                                              "count (e.g. 10)")  # (a uri_file with a size is a table)
            cfg["mini_batch_size"] = size
            if local is not None and local.is_dir() and not any(
                    p.is_file() and not p.name.startswith(".") for p in local.rglob("*")):
                errors.add("input_data", f"input {data_name!r} ({inp.get('uri')}) is an empty folder: nothing to score")
        elif typ in ("uri_file", "mltable"):
            kind, size = self._size(job.mini_batch_size, DEFAULTS["mini_batch_size_tabular"], errors)
            if kind == "count" and not job.partition_keys:
                errors.add("mini_batch_size", f"{job.mini_batch_size!r} is a count; an mltable input is split by "
                                              "size: give e.g. \"10kb\" or \"1MB\"")
            cfg["mini_batch_size"] = size
            if typ == "uri_file":
                suffix = Path(str(inp.get("uri") or inp.get("path") or "")).suffix.lower()
                cfg["tabular"] = {"format": "parquet" if suffix == ".parquet" else "csv", "files": None,
                                  "delimiter": "\t" if suffix == ".tsv" else ",", "header": True}
            elif local is not None:
                from openaml.datastores._mltable import validate_mltable_folder
                from openaml.errors import ValidationError

                try:
                    plan, problem = tabular_plan(local, validate_mltable_folder(local, label=inp.get("uri")))
                except ValidationError as exc:
                    plan, problem = None, exc.message
                if plan is not None and plan.get("ignored"):
                    # Azure's engine reads the MLTable with its transformations; ours reads the files as they
                    # are: scoring rows or columns the table removes would change what the user asked for
                    ignored = ", ".join(plan["ignored"])
                    plan, problem = None, (
                        f"its MLTable's transformations {ignored} cannot be applied to "
                        "mini-batches here (only read_delimited / read_parquet are): remove them and apply "
                        "them in the scoring script, or materialize the table in a step before "
                        "(docs/guide/batch.md)")
                if problem:
                    errors.add("input_data", f"input {data_name!r}: {problem}")
                elif plan is not None and job.partition_keys:
                    columns = _table_columns(local, plan)
                    missing = [k for k in job.partition_keys if columns is not None and k not in columns]
                    if missing and columns is not None:
                        errors.add("partition_keys", f"column {', '.join(map(repr, missing))} is not in the MLTable "
                                                     f"(columns: {', '.join(columns)})")
                cfg["tabular"] = plan
            else:
                errors.add("input_data", f"input {data_name!r}: an mltable input must be on a datastore the server "
                                         "can read (its MLTable file is read when the job is submitted)")
        elif typ is not None:
            errors.add("input_data", f"input {data_name!r} is of type {typ}; a parallel job splits uri_folder, "
                                     "uri_file (csv/parquet) or mltable inputs")
        return cfg

    @staticmethod
    def _size(value: Any, default: Any, errors: ResolveErrors) -> tuple[str, int]:
        try:
            return parse_mini_batch_size(default if value is None else value)
        except ValueError as exc:
            errors.add("mini_batch_size", str(exc))
            return "count", 1

    def _warm_pool_allowed(self) -> bool:
        """Whether a batch deployment's jobs may use a warm pool (runner._pool). The pool imports the
        environment's libraries outside every job's sandbox, with the runner's rights: on a
        single-user workspace those are the user's own; on a workspace with users (several people
        whose environments differ in trust) it runs only when the administrator turned it on with
        ``OPENAML_PARALLEL_POOL=1`` in the server's environment (docs/guide/batch.md)."""
        switch = os.environ.get("OPENAML_PARALLEL_POOL")
        if switch is not None:
            return switch == "1"
        return not self.ctx.services["users"].list()

    def _local_path(self, inp: dict[str, Any]) -> Path | None:
        """Where the server sees input ``inp``'s files (a datastore with a local path), else None."""
        try:
            if inp.get("datastore") is not None:
                port = self.ctx.services["datastores"].port(inp["datastore"]["name"])
                rel = inp.get("path") or ""
                return Path(port.local_path(rel)) if port.has_local_path else None
            if inp.get("local_path"):
                return Path(inp["local_path"])
        except Exception:  # noqa: BLE001 - resolve_inputs has said what is wrong
            return None
        return None

    def _snapshot(self, code_dir: str | None) -> str:
        """A code snapshot holding ``code_dir``'s files and the driver script, content-addressed
        (reused by every job with the same code and driver; files hard-linked where possible)."""
        engine = engine_files()
        digest = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in engine.items()) + b"\0" +
                                str(code_dir or "").encode()).hexdigest()
        target = self.ctx.layout.code / digest
        if (target / DRIVER_NAME).is_file():
            return str(target)
        tmp = self.ctx.layout.code / f".{digest}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if code_dir:
            src = Path(code_dir)

            def _link(s: str, d: str) -> None:
                try:
                    os.link(s, d)
                except OSError:
                    shutil.copy2(s, d)

            if src.is_file():
                tmp.mkdir(parents=True)
                shutil.copy2(src, tmp / src.name)
            else:
                shutil.copytree(src, tmp, copy_function=_link, symlinks=False)
        tmp.mkdir(parents=True, exist_ok=True)
        for rel, body in engine.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(body)
        try:
            os.replace(tmp, target)
        except OSError:  # another submission made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return str(target)

    def on_terminal(self, row: dict[str, Any]) -> None:
        """A job that completed with failed mini-batches (thresholds -1: failures ignored, as in Azure)
        or whose csv input has quoted line breaks without ``support_multi_line``: the engine's warning
        lines join the job's ``warnings`` (``job show``), not only its log."""
        if row["status"] != JobStatus.COMPLETED:
            return
        log = self.ctx.layout.job_dir(row["name"]) / "user_logs" / "std_log.txt"
        try:
            with open(log, "rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - 256 * 1024))
                tail = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return
        found = [ln.split("[openaml] parallel: ", 1)[1].strip() for ln in tail.splitlines()
                 if any(f"[openaml] parallel: {m}" in ln for m in ENGINE_WARNINGS)]
        known = list(row["runtime"].get("warnings") or [])
        new = [w for w in dict.fromkeys(found) if w not in known]
        if new:
            self.ctx.store.update_job(row["name"], runtime_update={"warnings": known + new})

    def start(self, row: dict[str, Any]) -> None:
        """Queue the job for its compute and wake the scheduler (as a command job)."""
        self.ctx.store.transition_job(row["name"], JobStatus.QUEUED, from_statuses=[JobStatus.NOT_STARTED])
        self.core.scheduler.wake()

