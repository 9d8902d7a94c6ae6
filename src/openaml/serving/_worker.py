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
web page can call. It writes ``{"socket", "pid", "slots"}`` to the config's ``ready_file`` once
``init()`` returned (``slots``: ``max_concurrent_requests_per_instance``, null when micro-batching);
an ``init()`` that raises prints the traceback and exits with code 3.

A request past ``request_timeout_ms`` gets 408 and frees its slot at once; its thread cannot be
stopped, so it runs on as *stuck*, and once one stays stuck another ``request_timeout_ms`` (or as many
are stuck as there are slots) the worker writes its ``recycle_file`` and the supervisor replaces it.
SIGTERM drains: no new connection, the requests in flight are answered, then the process exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import importlib.util
import json
import os
import signal
import sys
import time
import traceback
from typing import Any
from urllib.parse import parse_qs, unquote

# run as a script: this folder is sys.path[0], so the sibling modules import by their own names
from _worker_http import HTTPError, dumps, install_aml_modules, log, make_request

INIT_FAILED = 3
_Timeout = asyncio.TimeoutError  # what wait_for raises; not the builtin TimeoutError before Python 3.11
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Payload Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


# ---------------------------------------------------------------------- scorers
class ScriptScorer:
    """A score.py: ``init()``, ``run(raw_data)``; optional openaml ``batch_run(list_of_raw_data)``."""

    def __init__(self, path: str) -> None:
        install_aml_modules()
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

    def score(self, req: Req) -> tuple[int, bytes, dict[str, str]]:
        if self.run_fn is None:
            out = self.batch_fn([_raw_text(req)])[0]  # type: ignore[misc]
        elif self.raw:
            out = self.run_fn(make_request(req.method, req.path, req.query, req.headers, req.body))
        elif self.schema:
            try:
                kwargs = json.loads(req.body or b"{}")
            except ValueError as exc:
                raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
            out = self.run_fn(**kwargs) if isinstance(kwargs, dict) else self.run_fn(kwargs)
        else:
            out = self.run_fn(_raw_text(req))
        return _wrap(out)


class Req:
    """One request as the worker read it (header names lower-case)."""

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body


def _raw_text(req: Req) -> str:
    if req.method == "GET":
        return json.dumps({k: v[0] for k, v in parse_qs(req.query).items()})
    return req.body.decode("utf-8", "replace")


def _wrap(out: Any) -> tuple[int, bytes, dict[str, str]]:
    if hasattr(out, "status_code") and (hasattr(out, "body") or hasattr(out, "get_data")):
        if not hasattr(out, "get_data"):  # AMLResponse
            return out.status_code, out.body, dict(out.headers)
        return out.status_code, out.get_data(), dict(out.headers)  # a Flask response
    return 200, dumps(out), {}


def _tb(exc: BaseException) -> list[str]:
    # the three-argument form: deployment environments may run Python before 3.10
    return traceback.format_exception(type(exc), exc, exc.__traceback__)


def _error_status(exc: BaseException) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 400 <= code < 600 and hasattr(exc, "description"):
        return code  # a werkzeug HTTPException raised by the Flask request (get_json on a non-JSON body...)
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
        # one thread per slot (+1 for the batchers); a stuck run() adds one (see _bounded)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency + 1,
                                                          thread_name_prefix="score")
        self.scorer: Any = None
        self.mlflow = False
        self.batched = False
        self.inflight = 0  # /score requests received and not yet answered
        self.busy = 0  # of which inside a running batch
        self.app_root = cfg.get("app_root") or os.getcwd()
        self.stuck: dict[Any, float] = {}  # scoring threads past request_timeout_ms -> when they timed out
        self.recycle_asked = False
        self.draining = False

    def load(self) -> None:
        if self.cfg["mode"] == "mlflow":
            from _worker_mlflow import MLflowScorer

            self.scorer = MLflowScorer(self.cfg["mlflow_model_path"])
            self.mlflow = True
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
        asyncio.ensure_future(self._orphan_watch(int(self.cfg.get("parent_pid") or os.getppid()),
                                                 self.cfg.get("parent_fd")))
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
                # slots: how many requests the router may have here at once (it queues the rest, FIFO, for
                # whichever instance frees one first); none when batching (it wants them all)
                json.dump({"socket": path, "pid": os.getpid(),
                           "slots": None if self.batched else self.concurrency}, fh)
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

    async def _orphan_watch(self, parent: int, parent_fd: int | None = None) -> None:
        """Exit when the server that started us is gone (killed without stopping its workers); ask for
        recycling when a timed-out ``run()`` never returns.

        ``parent_fd``: the read end of a pipe whose write end only the server holds (readable, at end of
        file, once the server is gone): the way to tell in a PID namespace of our own, where the server
        is not our parent. Else ``parent``, the server's pid from the config, not ``getppid()`` at this
        point: a server that died during a long ``init()`` has already left us to pid 1 by then.
        """
        import select

        while True:
            if parent_fd is not None:
                gone = bool(select.select([parent_fd], [], [], 0)[0])
            else:
                gone = os.getppid() != parent
            if gone:
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

    async def _bounded(self, fn: Any, *args: Any, release: Any = None) -> Any:
        """``fn(*args)`` on a scoring thread. Raises TimeoutError after ``request_timeout_ms``; the thread
        then runs on as *stuck* (counted, never awaited again). ``release()`` (the caller's slot) is called
        once, as soon as the thread finishes or the request times out, whichever comes first."""
        fut = self.loop.run_in_executor(self.pool, fn, *args)
        done = [release is None]

        def free(_f: Any = None) -> None:
            if not done[0]:
                done[0] = True
                release()

        fut.add_done_callback(free)  # frees the slot before the answer travels back: the next caller starts
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except _Timeout:
            free()
            self.stuck[fut] = time.monotonic()
            fut.add_done_callback(lambda f: self.stuck.pop(f, None))
            # a stuck thread keeps its pool thread: make room so that the freed slot has one
            if hasattr(self.pool, "_max_workers"):
                self.pool._max_workers += 1
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
                status, payload, extra = await self._batched(Req(method, path, query, headers, body))
            else:
                status, payload, extra = await self._single(Req(method, path, query, headers, body))
        except HTTPError as exc:
            status, payload, extra = exc.status, dumps({"message": exc.message}), {}
        finally:
            self.inflight -= 1
        ms = (time.perf_counter() - started) * 1000
        if mirrored or status >= 400:
            log(f"{'mirrored ' if mirrored else ''}request {headers.get('x-request-id', '-')}: {status} "
                f"in {ms:.1f} ms{': ' + payload[:300].decode('utf-8', 'replace') if status >= 400 else ''}")
        return status, payload, {"x-ms-run-fn-exec-ms": f"{ms:.3f}", **extra}

    async def _single(self, req: Req, parsed: Any = None) -> tuple[int, bytes, dict[str, str]]:
        try:
            if self.sem.locked():  # a free slot is taken at once (wait_for would wrap it in a task)
                await asyncio.wait_for(self.sem.acquire(), self.queue_wait)
            else:
                await self.sem.acquire()
        except _Timeout:
            raise HTTPError(429, f"too many requests: {self.concurrency} running on this instance and none "
                                 f"finished within max_queue_wait_ms={self.queue_wait * 1000:.0f}") from None
        try:
            return await self._bounded(self._call, req, parsed,  # type: ignore[no-any-return]
                                       release=self.sem.release)
        except _Timeout:
            raise HTTPError(408, f"the request took longer than request_timeout_ms="
                                 f"{self.timeout * 1000:.0f}") from None

    def _call(self, req: Req, parsed: Any = None) -> tuple[int, bytes, dict[str, str]]:
        try:
            if self.mlflow:
                parsed = parsed or self.scorer.read(req.body, req.headers.get("content-type"))
                return 200, dumps(self.scorer.answer(parsed, self.scorer.predict([parsed])[0])), {}
            return self.scorer.score(req)
        except Exception as exc:  # noqa: BLE001 - the worker keeps serving
            return self._failure(exc)

    def _failure(self, exc: BaseException) -> tuple[int, bytes, dict[str, str]]:
        if self.mlflow:
            from _worker_mlflow import status_of

            status = status_of(exc)
            msg = exc.message if isinstance(exc, HTTPError) else str(getattr(exc, "message", "") or "")
            if status == 500 and type(exc).__name__ != "MlflowException":
                # as `mlflow models serve`: an error inside predict is answered 400, the traceback logged
                log("predict raised:\n" + "".join(_tb(exc)))
                status, msg = 400, ("Encountered an unexpected error while evaluating the model. Verify that the "
                                    f"input is compatible with the model for inference. {type(exc).__name__}: {exc}")
            return status, dumps({"message": msg or f"{type(exc).__name__}: {exc}"}), {"x-ms-run-function-failed": "True"}
        status = _error_status(exc)
        if status >= 500:
            log("run() raised:\n" + "".join(_tb(exc)))
        if isinstance(exc, HTTPError):
            msg = exc.message
        elif status < 500 and hasattr(exc, "description"):  # werkzeug's HTTPException
            msg = str(exc.description)
        else:
            msg = f"{type(exc).__name__}: {exc}"
        return status, dumps({"message": msg}), {"x-ms-run-function-failed": "True"}

    # -- micro-batching
    async def _batched(self, req: Req) -> tuple[int, bytes, dict[str, str]]:
        if self.mlflow:
            # a body that is not JSON fails here, alone, before batching
            frame = self.scorer.read(req.body, req.headers.get("content-type"))
            if frame.key is None:  # CSV, params, tensors: parsed and predicted alone
                return await self._single(req, frame)
            style = frame.style
        else:
            frame, style = _raw_text(req), "raw"
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
        return 200, dumps(self.scorer.answer(frame, out)), {}

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
            for (_f, fut), res in zip(live, results):  # noqa: B905 - equal lengths; strict= needs Python 3.10
                if not fut.done():
                    fut.set_result(res)

    def _run_batch(self, frames: list[Any]) -> list[Any]:
        """Answers in order; a failing batch is retried request by request so a bad one fails alone."""
        if self.mlflow:
            groups: dict[Any, list[int]] = {}
            for i, f in enumerate(frames):
                groups.setdefault(f.key, []).append(i)
            out: list[Any] = [None] * len(frames)
            for idx in groups.values():
                try:
                    parts = self.scorer.predict([frames[i] for i in idx])
                except Exception:  # noqa: BLE001
                    parts = [self._safe(lambda i=i: self.scorer.predict([frames[i]])[0]) for i in idx]
                for i, p in zip(idx, parts):  # noqa: B905 - equal lengths; strict= needs Python 3.10
                    out[i] = p
            return out
        try:
            res = list(self.scorer.batch_fn(frames))
            if len(res) != len(frames):
                raise RuntimeError(f"batch_run returned {len(res)} results for {len(frames)} inputs")
            return res
        except Exception as exc:  # noqa: BLE001
            if len(frames) == 1 or self.scorer.run_fn is None:
                log("batch_run() raised:\n" + "".join(_tb(exc)))
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
        if self.mlflow and self.scorer.swagger_definitions():
            doc["definitions"] = self.scorer.swagger_definitions()
        return dumps(doc)


def _rows(frame: Any) -> int:
    return frame.rows() if hasattr(frame, "rows") else 1


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    worker = Worker(cfg)
    log(f"[openaml] worker {cfg.get('instance', 0)} of {cfg.get('deployment')}: init() "
        f"({cfg['mode']}, python {sys.version.split()[0]}, AZUREML_MODEL_DIR={os.environ.get('AZUREML_MODEL_DIR')})")
    try:
        worker.load()
    except BaseException as exc:  # noqa: BLE001 - reported, then the supervisor marks the deployment Failed
        log("[openaml] init() failed:\n" + "".join(_tb(exc)))
        return INIT_FAILED
    # init() is done: what it loaded (the model, pandas, scikit-learn, MLflow...) lives as long as the worker.
    # Frozen, a full collection while serving no longer walks it (unfrozen: a 100-200 ms stop of every
    # request on this instance, a few times a minute under load).
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(worker.start())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
