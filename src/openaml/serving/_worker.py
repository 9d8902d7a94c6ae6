"""One deployment worker: an HTTP/1.1 server on a unix socket, in the deployment's environment.

Runs as a plain script (``<env python> _worker.py <config.json>``) with the standard library
only, so any environment can host it (numpy, pandas and mlflow are imported only when the
deployment needs them). Reproduces azureml-inference-server-http's contract (spec 14.5):
``GET /`` liveness, ``POST|GET /score``, ``GET /swagger.json``; ``init()`` once, ``run(raw_data)``
per request, ``@rawhttp`` with ``AMLRequest``/``AMLResponse``; MLflow models served with no
scoring script. Adds request limits (429 after ``max_queue_wait_ms``, 408 after
``request_timeout_ms``, 413 above ``max_request_size_bytes``) and micro-batching.

The worker listens only on the unix socket named by the config's ``socket`` (created 0600 in a
0700 folder), so only the server's router reaches it: no TCP port, nothing another local user or a
web page can call. It writes ``{"socket", "pid"}`` to the config's ``ready_file`` once ``init()``
returned; an ``init()`` that raises prints the traceback and exits with code 3.

A request past ``request_timeout_ms`` gets 408 and frees its slot at once; its thread cannot be
stopped, so it runs on as *stuck*, and once one stays stuck another ``request_timeout_ms`` (or as many
are stuck as there are slots) the worker writes its ``recycle_file`` and the supervisor replaces it.
SIGTERM drains: no new connection, the requests in flight are answered, then the process exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import json
import os
import signal
import sys
import time
import traceback
import types
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote

INIT_FAILED = 3
_Timeout = asyncio.TimeoutError  # what wait_for raises; not the builtin TimeoutError before Python 3.11
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Payload Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
    sys.stderr.flush()


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------- JSON of results
def _default(obj: Any) -> Any:
    """numpy and pandas values (and anything with ``tolist``/``to_dict``) become JSON."""
    mod = type(obj).__module__
    if mod.startswith("numpy"):
        return obj.tolist() if hasattr(obj, "tolist") else obj.item()
    if mod.startswith("pandas"):
        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return obj.to_dict(orient="records")
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=_default, allow_nan=True).encode()


# ---------------------------------------------------------------------- AMLRequest / AMLResponse
class AMLRequest:
    """What ``@rawhttp`` run functions receive (the Flask request's commonly used surface)."""

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.full_path = path + ("?" + query if query else "")
        self.headers = headers
        self.args = {k: v[0] for k, v in parse_qs(query).items()}
        self.data = body
        self.content_type = headers.get("content-type")

    def get_data(self, as_text: bool = False) -> Any:
        return self.data.decode() if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()


class AMLResponse:
    """What a run function may return for full control of status, body and headers."""

    def __init__(self, message: Any = None, status_code: int = 200, response_headers: dict[str, str] | None = None,
                 json_str: bool = False) -> None:
        if json_str and not isinstance(message, (str, bytes)):
            message = json.dumps(message, default=_default)
        self.body = message.encode() if isinstance(message, str) else (message or b"")
        self.status_code = status_code
        self.headers = dict(response_headers or {})


def rawhttp(fn: Any) -> Any:
    fn._openaml_rawhttp = True
    return fn


def _install_aml_modules() -> None:
    """Make ``azureml.contrib.services.aml_request``/``aml_response`` importable (Azure patches them too)."""
    try:
        import azureml.contrib.services.aml_request  # noqa: F401
        return
    except Exception:  # noqa: BLE001, S110 - not installed (the usual case)
        pass
    for name in ("azureml", "azureml.contrib", "azureml.contrib.services"):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = []  # type: ignore[attr-defined]
            sys.modules[name] = mod
    req = types.ModuleType("azureml.contrib.services.aml_request")
    req.AMLRequest = AMLRequest  # type: ignore[attr-defined]
    req.rawhttp = rawhttp  # type: ignore[attr-defined]
    resp = types.ModuleType("azureml.contrib.services.aml_response")
    resp.AMLResponse = AMLResponse  # type: ignore[attr-defined]
    sys.modules[req.__name__] = req
    sys.modules[resp.__name__] = resp


# ---------------------------------------------------------------------- scorers
class ScriptScorer:
    """A score.py: ``init()``, ``run(raw_data)``; optional openaml ``batch_run(list_of_raw_data)``."""

    def __init__(self, path: str) -> None:
        _install_aml_modules()
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location("score", path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load scoring script {path}")
        self.module = importlib.util.module_from_spec(spec)
        sys.modules["score"] = self.module
        spec.loader.exec_module(self.module)
        self.run_fn = getattr(self.module, "run", None)
        self.batch_fn = getattr(self.module, "batch_run", None)
        if self.run_fn is None and self.batch_fn is None:
            raise RuntimeError(f"scoring script {path} defines no run(raw_data) function")
        self.raw = bool(getattr(self.run_fn, "_openaml_rawhttp", False))
        self.schema = "inference_schema" in sys.modules and hasattr(self.run_fn, "__wrapped__")

    def schemas(self) -> tuple[Any, Any]:
        """(input, output) JSON schemas of inference-schema decorators on ``run``, else (None, None)."""
        if not self.schema:
            return None, None
        try:
            from inference_schema.schema_util import get_input_schema, get_output_schema
        except ImportError:
            return None, None
        try:
            return get_input_schema(self.run_fn) or None, get_output_schema(self.run_fn) or None
        except Exception as exc:  # noqa: BLE001 - a broken schema must not break /swagger.json
            log(f"[openaml] inference-schema could not describe run(): {exc}")
            return None, None

    def init(self) -> None:
        init = getattr(self.module, "init", None)
        if init is not None:
            init()

    def score(self, req: AMLRequest) -> tuple[int, bytes, dict[str, str]]:
        if self.run_fn is None:
            out = self.batch_fn([req.get_data(as_text=True)])[0]  # type: ignore[misc]
        elif self.raw:
            out = self.run_fn(req)
        elif self.schema:
            try:
                kwargs = json.loads(req.data or b"{}")
            except ValueError as exc:
                raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
            out = self.run_fn(**kwargs) if isinstance(kwargs, dict) else self.run_fn(kwargs)
        else:
            out = self.run_fn(_raw_text(req))
        return _wrap(out)


def _raw_text(req: AMLRequest) -> str:
    if req.method == "GET":
        return json.dumps(req.args)
    return req.data.decode("utf-8", "replace")


def _wrap(out: Any) -> tuple[int, bytes, dict[str, str]]:
    if isinstance(out, AMLResponse) or (hasattr(out, "status_code") and hasattr(out, "get_data")):
        if isinstance(out, AMLResponse):
            return out.status_code, out.body, out.headers
        return out.status_code, out.get_data(), dict(out.headers)  # a Flask response
    return 200, dumps(out), {}


class MLflowScorer:
    """An MLflow model with no scoring script: MLflow's scoring formats, signature enforced."""

    def __init__(self, path: str) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(path)
        schema = self.model.metadata.get_input_schema()
        self.columns: list[tuple[str, str, bool]] = []
        if schema is not None and schema.has_input_names() and not schema.is_tensor_spec():
            for col in schema.inputs:
                self.columns.append((col.name, str(getattr(col.type, "name", col.type)), bool(getattr(col, "required", True))))

    def init(self) -> None:
        return None

    # -- parsing: every batchable request becomes (columns, rows)
    def parse(self, body: bytes) -> tuple[Any, str]:
        """(frame or raw input, response style). Frames are ``(columns tuple, rows list)``."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "the request body must be a JSON object with one of the keys input_data, "
                                 "dataframe_split, dataframe_records, instances or inputs")
        keys = [k for k in ("input_data", "dataframe_split", "dataframe_records", "instances", "inputs") if k in data]
        if len(keys) != 1:
            raise HTTPError(400, f"the request must have exactly one of input_data, dataframe_split, "
                                 f"dataframe_records, instances, inputs; got keys {sorted(data)}")
        key = keys[0]
        value = data[key]
        style = "list" if key == "input_data" else "predictions"
        if key in ("input_data", "dataframe_split") and isinstance(value, dict):
            cols = value.get("columns")
            rows = value.get("data")
            if not isinstance(rows, list):
                raise HTTPError(400, f"{key}.data must be a list of rows")
            if rows and all(isinstance(r, dict) for r in rows):
                return self._records(rows, key), style
            if cols is None:
                cols = [c[0] for c in self.columns]
            for i, r in enumerate(rows):
                if not isinstance(r, list) or len(r) != len(cols):
                    raise HTTPError(400, f"{key}.data[{i}] must be a list of {len(cols)} values (columns "
                                         f"{list(cols)}), got {json.dumps(r)[:100]}")
            return self._check(tuple(cols), rows), style
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            return self._records(value, key), style
        if key == "input_data" and isinstance(value, list) and value and all(isinstance(r, list) for r in value) \
                and self.columns:
            cols = tuple(c[0] for c in self.columns)
            for i, r in enumerate(value):
                if len(r) != len(cols):
                    raise HTTPError(400, f"input_data[{i}] has {len(r)} values; the model's signature has "
                                         f"{len(cols)} columns: {list(cols)}")
            return self._check(cols, value), style
        if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
            cols = tuple(value)
            n = len(next(iter(value.values())))
            return self._check(cols, [[value[c][i] for c in cols] for i in range(n)]), style
        return ("raw", value), style

    def _records(self, records: list[dict[str, Any]], key: str) -> tuple[tuple[str, ...], list[list[Any]]]:
        cols = [c[0] for c in self.columns] or list(dict.fromkeys(k for r in records for k in r))
        if self.columns:
            extra = [k for k in dict.fromkeys(k for r in records for k in r) if k not in cols]
            cols += extra
        return self._check(tuple(cols), [[r.get(c) for c in cols] for r in records], records=records)

    _OK: ClassVar[dict[str, tuple[type, ...]]] = {"double": (int, float), "float": (int, float), "long": (int,), "integer": (int,),
           "string": (str,), "boolean": (bool,), "binary": (str, bytes), "datetime": (str,)}

    def _check(self, cols: tuple[str, ...], rows: list[list[Any]],
               records: list[dict[str, Any]] | None = None) -> tuple[tuple[str, ...], list[list[Any]]]:
        """The model's signature, enforced per request: missing columns and wrong types named."""
        if not self.columns:
            return cols, rows
        index = {c: i for i, c in enumerate(cols)}
        missing = [n for n, _t, req in self.columns if req and n not in index]
        if records is not None and not missing:
            missing = sorted({n for n, _t, req in self.columns if req for r in records if n not in r})
        if missing:
            raise HTTPError(400, f"missing column(s) {missing} required by the model's signature; expected "
                                 f"columns: {[f'{n} ({t})' for n, t, _ in self.columns]}")
        for name, typ, _req in self.columns:
            ok = self._OK.get(typ)
            if ok is None:
                continue
            j = index[name]
            for i, row in enumerate(rows):
                v = row[j]
                if v is None:
                    if typ in ("double", "float"):
                        continue
                    raise HTTPError(400, f"column {name!r} (row {i}) is null; the model's signature needs {typ}")
                if not isinstance(v, ok) or (isinstance(v, bool) and typ != "boolean") or (
                        typ in ("long", "integer") and isinstance(v, float) and not v.is_integer()):
                    raise HTTPError(400, f"column {name!r} (row {i}) has {type(v).__name__} value {v!r}; "
                                         f"the model's signature needs {typ}")
        return cols, rows

    # -- prediction
    def predict_frames(self, frames: list[tuple[tuple[str, ...], list[list[Any]]]]) -> list[Any]:
        """One predict over several requests with the same columns; the answer split per request."""
        import pandas as pd

        cols = frames[0][0]
        rows: list[list[Any]] = []
        for _c, r in frames:
            rows.extend(r)
        if len(set(cols)) == len(cols):
            # column by column: the same dtypes as DataFrame(rows), ~40 % less time for the usual few rows
            frame = pd.DataFrame({c: [r[j] for r in rows] for j, c in enumerate(cols)}, columns=list(cols))
        else:  # duplicate names (a dict would merge them): let the signature check report them
            frame = pd.DataFrame(rows, columns=list(cols))
        out = self.model.predict(frame)
        parts, start = [], 0
        for _c, r in frames:
            parts.append(_slice(out, start, start + len(r)))
            start += len(r)
        return parts

    def predict_raw(self, value: Any) -> Any:
        import numpy as np

        try:
            arr = np.asarray(value)
        except Exception:  # noqa: BLE001
            arr = value
        return _jsonable(self.model.predict(arr))


def _slice(out: Any, a: int, b: int) -> Any:
    if hasattr(out, "iloc"):
        return _jsonable(out.iloc[a:b])
    if isinstance(out, dict):
        return {k: _slice(v, a, b) for k, v in out.items()}
    return _jsonable(out[a:b])


def _jsonable(out: Any) -> Any:
    if hasattr(out, "columns") and hasattr(out, "to_dict"):
        return out.to_dict(orient="records")
    if hasattr(out, "tolist"):
        return out.tolist()
    return out


def _error_status(exc: BaseException) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    name = type(exc).__name__
    code = str(getattr(exc, "error_code", ""))
    if name == "MlflowException" and code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", ""):
        return 400
    return 500


# ---------------------------------------------------------------------- the server
class Worker:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.timeout = cfg.get("request_timeout_ms", 5000) / 1000
        self.queue_wait = cfg.get("max_queue_wait_ms", 500) / 1000
        self.concurrency = int(cfg.get("max_concurrent_requests_per_instance", 1))
        self.max_bytes = int(cfg.get("max_request_size_bytes", 100 << 20))
        batching = cfg.get("micro_batching") or {}
        self.batch_size = int(batching.get("max_batch_size", 64))
        self.batch_wait = float(batching.get("max_wait_ms", 2.0)) / 1000
        # room for as many stuck threads as slots (then the worker is replaced) and a few more meanwhile
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2 * self.concurrency + 8,
                                                          thread_name_prefix="score")
        self.scorer: Any = None
        self.batched = False
        self.inflight = 0  # /score requests received and not yet answered
        self.busy = 0  # of which inside a running batch
        self.app_root = cfg.get("app_root") or os.getcwd()
        self.stuck: dict[Any, float] = {}  # scoring threads past request_timeout_ms -> when they timed out
        self.recycle_asked = False
        self.draining = False

    def load(self) -> None:
        if self.cfg["mode"] == "mlflow":
            self.scorer = MLflowScorer(self.cfg["mlflow_model_path"])
            self.batched = bool((self.cfg.get("micro_batching") or {}).get("enabled", True))
        else:
            self.scorer = ScriptScorer(self.cfg["entry_script"])
            self.scorer.init()
            self.batched = self.scorer.batch_fn is not None and bool(
                (self.cfg.get("micro_batching") or {}).get("enabled", True))

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(self.concurrency)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        if self.batched:
            for _ in range(self.concurrency):
                asyncio.ensure_future(self._batcher())
        asyncio.ensure_future(self._orphan_watch(int(self.cfg.get("parent_pid") or os.getppid())))
        path = self.cfg["socket"]
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o177)  # the socket file is created 0600: only the server's user may connect
        try:
            server = await asyncio.start_unix_server(self._conn, path, limit=1 << 20, backlog=1024)
        finally:
            os.umask(old)
        self.server = server
        self.loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(self._drain()))
        ready = self.cfg.get("ready_file")
        if ready:
            tmp = ready + ".tmp"
            with open(tmp, "w") as fh:  # noqa: ASYNC230 - once, before serving
                json.dump({"socket": path, "pid": os.getpid()}, fh)
            os.replace(tmp, ready)
        log(f"[openaml] worker {self.cfg.get('instance', 0)} of {self.cfg.get('deployment')} listening on "
            f"{path} ({'micro-batching' if self.batched else 'no batching'}, "
            f"max_concurrent_requests_per_instance={self.concurrency})")
        await self.loop.create_future()  # serves until SIGTERM's drain (or the orphan check) exits

    async def _drain(self) -> None:
        """SIGTERM: take no new connection, let the requests in flight finish (up to request_timeout_ms), exit.

        The supervisor has already taken this instance out of routing; requests already written on a
        kept connection are still read and answered, so retiring a worker fails no request.
        """
        if self.draining:
            return
        self.draining = True
        self.server.close()
        deadline = time.monotonic() + self.timeout + 1.0
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            quiet = quiet + 1 if self.inflight <= 0 else 0
            await asyncio.sleep(0.05)
        os._exit(0)

    async def _orphan_watch(self, parent: int) -> None:
        """Exit when the server that started us is gone (killed without stopping its workers); ask for
        recycling when a timed-out ``run()`` never returns.

        ``parent`` is the server's pid from the config, not ``getppid()`` at this point: a server that
        died during a long ``init()`` has already left us to pid 1 by then.
        """
        while True:
            if os.getppid() != parent:
                log("[openaml] the server exited; worker stopping")
                os._exit(0)
            self._check_stuck()
            await asyncio.sleep(0.5)

    # -- requests past request_timeout_ms: the slot is freed at once, the thread is left to finish
    def _check_stuck(self) -> None:
        """Ask the supervisor for a replacement once a timed-out ``run()`` has not returned for another
        ``request_timeout_ms``, or as many are still running as there are slots (a thread cannot be
        killed; the process can, once its replacement serves)."""
        if not self.stuck or self.recycle_asked:
            return
        oldest = min(self.stuck.values())
        late = time.monotonic() - oldest > self.timeout
        if not late and len(self.stuck) < self.concurrency:
            return
        self.recycle_asked = True
        reason = (f"{len(self.stuck)} request(s) still running past request_timeout_ms="
                  f"{self.timeout * 1000:.0f} (their callers got 408)")
        log(f"[openaml] {reason}; asking for this worker to be replaced")
        target = self.cfg.get("recycle_file")
        if target:
            with open(target + ".tmp", "w") as fh:
                fh.write(reason)
            os.replace(target + ".tmp", target)

    async def _bounded(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on a scoring thread. Raises TimeoutError after ``request_timeout_ms``; the thread
        then runs on as *stuck* (counted, never awaited again) and the caller's slot is free."""
        fut = self.loop.run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except _Timeout:
            self.stuck[fut] = time.monotonic()
            fut.add_done_callback(lambda f: self.stuck.pop(f, None))
            self._check_stuck()
            raise

    # -- HTTP/1.1 with keep-alive
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    break
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _ver = lines[0].split(" ", 2)
                except ValueError:
                    break
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                if length > self.max_bytes:
                    await self._send(writer, 413, dumps({"message": f"the request body is {length} bytes; the "
                                                        f"limit is {self.max_bytes}"}), {}, close=True)
                    break
                body = await reader.readexactly(length) if length else b""
                path, _, query = target.partition("?")
                status, payload, extra = await self._handle(method, unquote(path), query, headers, body)
                await self._send(writer, status, payload, extra)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001, S110 - the peer is gone
                pass

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: bytes, headers: dict[str, str],
                    close: bool = False) -> None:
        ctype = headers.pop("content-type", None) or headers.pop("Content-Type", None) or "application/json"
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-type: {ctype}",
                f"content-length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if close:
            head.append("connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()

    async def _handle(self, method: str, path: str, query: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if path in ("/", "/health") and method == "GET":
            return 200, b"Healthy", {"content-type": "text/plain"}
        if path == "/swagger.json" and method == "GET":
            return 200, self._swagger(), {}
        if path != "/score":
            return 404, dumps({"message": f"no route {path}; use /score"}), {}
        if method not in ("POST", "GET"):
            return 405, dumps({"message": f"method {method} not allowed on /score"}), {}
        started = time.perf_counter()
        mirrored = headers.get("x-openaml-mirror") == "1"
        self.inflight += 1
        try:
            if self.batched:
                status, payload, extra = await self._batched(method, path, query, headers, body)
            else:
                status, payload, extra = await self._single(AMLRequest(method, path, query, headers, body))
        except HTTPError as exc:
            status, payload, extra = exc.status, dumps({"message": exc.message}), {}
        finally:
            self.inflight -= 1
        ms = (time.perf_counter() - started) * 1000
        if mirrored or status >= 400:
            log(f"{'mirrored ' if mirrored else ''}request {headers.get('x-request-id', '-')}: {status} "
                f"in {ms:.1f} ms{': ' + payload[:300].decode('utf-8', 'replace') if status >= 400 else ''}")
        return status, payload, {"x-ms-run-fn-exec-ms": f"{ms:.3f}", **extra}

    async def _single(self, req: AMLRequest) -> tuple[int, bytes, dict[str, str]]:
        try:
            if self.sem.locked():  # a free slot is taken at once (wait_for would wrap it in a task)
                await asyncio.wait_for(self.sem.acquire(), self.queue_wait)
            else:
                await self.sem.acquire()
        except _Timeout:
            raise HTTPError(429, f"too many requests: {self.concurrency} running on this instance and none "
                                 f"finished within max_queue_wait_ms={self.queue_wait * 1000:.0f}") from None
        try:
            return await self._bounded(self._call, req)  # type: ignore[no-any-return]
        except _Timeout:
            raise HTTPError(408, f"the request took longer than request_timeout_ms="
                                 f"{self.timeout * 1000:.0f}") from None
        finally:
            self.sem.release()

    def _call(self, req: AMLRequest) -> tuple[int, bytes, dict[str, str]]:
        try:
            if isinstance(self.scorer, MLflowScorer):
                frame, style = self.scorer.parse(req.data)
                out = self._predict_one(frame)
                return 200, dumps(out if style == "list" else {"predictions": out}), {}
            return self.scorer.score(req)
        except Exception as exc:  # noqa: BLE001 - the worker keeps serving
            return self._failure(exc)

    def _failure(self, exc: BaseException) -> tuple[int, bytes, dict[str, str]]:
        status = _error_status(exc)
        if status >= 500:
            log("run() raised:\n" + "".join(traceback.format_exception(exc)))
        msg = exc.message if isinstance(exc, HTTPError) else f"{type(exc).__name__}: {exc}"
        return status, dumps({"message": msg}), {"x-ms-run-function-failed": "True"}

    def _predict_one(self, frame: Any) -> Any:
        if frame[0] == "raw":
            return self.scorer.predict_raw(frame[1])
        return self.scorer.predict_frames([frame])[0]

    # -- micro-batching
    async def _batched(self, method: str, path: str, query: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if isinstance(self.scorer, MLflowScorer):
            frame, style = self.scorer.parse(body)  # bad input fails here, alone, before batching
            if frame[0] == "raw":
                return await self._single(AMLRequest(method, path, query, headers, body))
        else:
            frame, style = body.decode("utf-8", "replace"), "raw"
        fut: asyncio.Future[Any] = self.loop.create_future()
        self.queue.put_nowait((time.monotonic(), frame, fut))
        try:
            out = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except _Timeout:
            raise HTTPError(408, f"the request took longer than request_timeout_ms="
                                 f"{self.timeout * 1000:.0f}") from None
        if isinstance(out, BaseException):
            return self._failure(out)
        if style == "raw":
            return _wrap(out)
        return 200, dumps(out if style == "list" else {"predictions": out}), {}

    async def _batcher(self) -> None:
        while True:
            first = await self.queue.get()
            items = [first]
            rows = _rows(first[1])
            deadline = time.monotonic() + self.batch_wait
            while rows < self.batch_size:
                try:
                    nxt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    # adaptive: wait for company only while other requests are on their way to the queue
                    # (received, not yet queued, not in a running batch); alone, a request goes at once
                    if self.inflight - self.busy - len(items) <= 0:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), left)
                    except _Timeout:
                        break
                items.append(nxt)
                rows += _rows(nxt[1])
            now = time.monotonic()
            live = []
            for t0, frame, fut in items:
                if fut.done():
                    continue
                if now - t0 > self.queue_wait + self.batch_wait:
                    fut.set_result(HTTPError(429, f"waited over max_queue_wait_ms={self.queue_wait * 1000:.0f} "
                                                  "for a free slot on this instance"))
                    continue
                live.append((frame, fut))
            if not live:
                continue
            self.busy += len(live)
            try:
                results = await self._bounded(self._run_batch, [f for f, _ in live])
            except _Timeout:  # the callers got 408 from their own wait; this batcher serves on
                continue
            finally:
                self.busy -= len(live)
            for (_f, fut), res in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(res)

    def _run_batch(self, frames: list[Any]) -> list[Any]:
        """Answers in order; a failing batch is retried request by request so a bad one fails alone."""
        if isinstance(self.scorer, MLflowScorer):
            groups: dict[tuple[str, ...], list[int]] = {}
            for i, f in enumerate(frames):
                groups.setdefault(f[0], []).append(i)
            out: list[Any] = [None] * len(frames)
            for idx in groups.values():
                try:
                    parts = self.scorer.predict_frames([frames[i] for i in idx])
                except Exception:  # noqa: BLE001
                    parts = [self._safe(lambda i=i: self.scorer.predict_frames([frames[i]])[0]) for i in idx]
                for i, p in zip(idx, parts, strict=True):
                    out[i] = p
            return out
        try:
            res = list(self.scorer.batch_fn(frames))
            if len(res) != len(frames):
                raise RuntimeError(f"batch_run returned {len(res)} results for {len(frames)} inputs")
            return res
        except Exception as exc:  # noqa: BLE001
            if len(frames) == 1 or self.scorer.run_fn is None:
                log("batch_run() raised:\n" + "".join(traceback.format_exception(exc)))
                return [exc] * len(frames)
            return [self._safe(lambda f=f: self.scorer.run_fn(f)) for f in frames]

    def _safe(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            return exc

    def _swagger(self) -> bytes:
        for name in ("swagger2.json", "swagger.json"):
            p = os.path.join(self.app_root, name)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    return fh.read()
        doc = {"swagger": "2.0", "info": {"title": str(self.cfg.get("deployment")), "version": "1.0"},
               "schemes": ["https"], "consumes": ["application/json"], "produces": ["application/json"],
               "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}},
               "paths": {"/score": {"post": {"operationId": "RunMLService", "security": [{"Bearer": []}],
                                             "responses": {"200": {"description": "Success"}}}}}}
        if isinstance(self.scorer, ScriptScorer):
            inp, out = self.scorer.schemas()
            post = doc["paths"]["/score"]["post"]  # type: ignore[index]
            defs: dict[str, Any] = {}
            if inp is not None:
                defs["ServiceInput"] = inp
                post["parameters"] = [{"name": "Inputs", "in": "body", "required": True,
                                       "schema": {"$ref": "#/definitions/ServiceInput"}}]
            if out is not None:
                defs["ServiceOutput"] = out
                post["responses"]["200"]["schema"] = {"$ref": "#/definitions/ServiceOutput"}
            if defs:
                doc["definitions"] = defs
        if isinstance(self.scorer, MLflowScorer) and self.scorer.columns:
            doc["definitions"] = {"Input": {"type": "object", "properties": {
                n: {"type": {"double": "number", "float": "number", "long": "integer", "integer": "integer",
                             "boolean": "boolean"}.get(t, "string")} for n, t, _ in self.scorer.columns}}}
        return dumps(doc)


def _rows(frame: Any) -> int:
    return len(frame[1]) if isinstance(frame, tuple) and isinstance(frame[1], list) else 1


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    worker = Worker(cfg)
    log(f"[openaml] worker {cfg.get('instance', 0)} of {cfg.get('deployment')}: init() "
        f"({cfg['mode']}, python {sys.version.split()[0]}, AZUREML_MODEL_DIR={os.environ.get('AZUREML_MODEL_DIR')})")
    try:
        worker.load()
    except BaseException as exc:  # noqa: BLE001 - reported, then the supervisor marks the deployment Failed
        log("[openaml] init() failed:\n" + "".join(traceback.format_exception(exc)))
        return INIT_FAILED
    try:
        asyncio.run(worker.start())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
