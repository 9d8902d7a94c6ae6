"""Who is calling, and may they: authentication and Azure ML's workspace roles, for every route.

One ASGI middleware in front of the whole app (REST API, the ``/mlflow`` mount, scoring):

1. **Who.** ``Authorization: Bearer <token>`` is the server token (the workspace owner), a
   user's token (that user, with its role) or a job's scoped token (that job's run, with its
   submitter's role). No token: the owner on a loopback server started without a token (as a
   local tool), but only from a process of the server's own OS user that is not a job's or a
   deployment's (:mod:`openaml.server._peer`); 401 otherwise. An unknown, revoked or expired token is 401 everywhere.
2. **May they.** One table, :data:`RULES`, maps (method, path prefix) to the permission needed;
   :data:`ROLE_PERMISSIONS` gives each built-in role its permissions. Routes do not check roles
   themselves, so adding a route needs no change here unless it needs a stronger permission
   than its method implies (reads need ``read``, other methods ``write``).
3. **Scope of a job's token.** A job may log to its own MLflow run, read what a job reads
   (experiments, registered models and their files, its own job record) and nothing else
   (:func:`job_scope_refusal`). Its runner's routes (``/api/v1/jobs/<job>/runner/...``: spec,
   reports, logs, and for a runner that cannot see the server's disk its code snapshot, its
   declared inputs and outputs) take that job's runner token (scope ``runner``, handed to the
   runner only) and no other principal's: not the token its command gets (scope ``job``), so user
   code cannot report its own job Completed (:func:`runner_route_refusal`).

Scoring routes (``/endpoints/...``) are left to the endpoint's own key check.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from openaml.server._guard import parse_bearer, parse_query_token
from openaml.server._peer import PeerCheck
from openaml.services._actor import OWNER, Principal, current_actor
from openaml.services.users import SESSION_S

__all__ = ["AuthMiddleware", "RULES", "ROLE_PERMISSIONS", "required_permission", "job_scope_refusal",
           "SESSION_COOKIE", "session_cookie", "request_json_object"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PUBLIC, READ, WRITE, INFRA, USERS, OWNER_ONLY = "public", "read", "write", "infra", "users", "owner"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "Reader": frozenset({READ}),
    "AzureML Data Scientist": frozenset({READ, WRITE}),
    "Contributor": frozenset({READ, WRITE, INFRA}),
    "Owner": frozenset({READ, WRITE, INFRA, USERS, OWNER_ONLY}),
}
_PERMISSION_TEXT = {
    READ: "read access", WRITE: "write access (AzureML Data Scientist, Contributor or Owner)",
    INFRA: "changes to computes, datastores and workspace settings (Contributor or Owner)",
    USERS: "user and role management (Owner)", OWNER_ONLY: "the Owner role",
}

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_HEALTH = frozenset({"/health", "/api/v1/health"})
ANY: frozenset[str] | None = None
_MLFLOW_API = ("/mlflow/api/2.0/mlflow/", "/mlflow/ajax-api/2.0/mlflow/", "/mlflow/api/3.0/mlflow/",
               "/mlflow/ajax-api/3.0/mlflow/")
# MLflow calls that read although they are POSTs (search bodies are too big for a query string)
_MLFLOW_READ_POSTS = ("experiments/search", "runs/search", "registered-models/search", "model-versions/search",
                      "registered-models/get-latest-versions", "logged-models/search", "traces/search",
                      "datasets/search", "metrics/get-history-bulk-interval")

#: (methods or None for any, path prefix, permission). First match wins.
RULES: tuple[tuple[frozenset[str] | None, str, str], ...] = (
    (ANY, "/health", PUBLIC),
    (ANY, "/api/v1/health", PUBLIC),
    (ANY, "/endpoints/", PUBLIC),  # scoring: the endpoint's key or token is checked by its router
    (ANY, "/login", PUBLIC),  # the studio's login form checks the token itself (openaml.server.studio._login)
    (frozenset({"POST"}), "/logout", PUBLIC),
    (frozenset({"GET"}), "/studio-static/", PUBLIC),  # the studio's own CSS/JS (in the package, no data)
    (frozenset({"GET"}), "/favicon.ico", PUBLIC),  # the studio's icon (in the package)
    (SAFE, "/api/v1/users", READ),
    (ANY, "/api/v1/users", USERS),
    (SAFE, "/", READ),
    *((frozenset({"POST"}), api + op, READ) for api in _MLFLOW_API for op in _MLFLOW_READ_POSTS),
    (frozenset({"POST"}), "/mlflow/graphql", READ),  # queries; a mutation needs WRITE (see _graphql)
    (ANY, "/api/v1/computes", INFRA),
    (ANY, "/api/v1/datastores", INFRA),  # on a local path: OWNER_ONLY (see _datastore_permission)
    (ANY, "/api/v1/workspace", INFRA),
    (ANY, "/", WRITE),
)

_SLASHES = re.compile(r"/{2,}")
_MAX_INSPECTED_BODY = 32 * 1024 * 1024


def required_permission(method: str, path: str) -> str:
    """The permission :data:`RULES` asks for ``method path`` (before any look at the body)."""
    for methods, prefix, permission in RULES:
        if (methods is None or method in methods) and path.startswith(prefix):
            return permission
    return WRITE


SESSION_COOKIE = "openaml_session"


def session_cookie(scope: Scope) -> str | None:
    """The value of the ``openaml_session`` cookie, or None. Never raises."""
    try:
        for key, value in scope.get("headers") or ():
            if bytes(key).lower() != b"cookie":
                continue
            for part in bytes(value).decode("ascii").split(";"):
                name, _, val = part.strip().partition("=")
                if name == SESSION_COOKIE and val:
                    return val
    except (TypeError, ValueError, UnicodeError):
        return None
    return None


def _has_authorization(scope: Scope) -> bool:
    return any(bytes(k).lower() == b"authorization" for k, _ in scope.get("headers") or ())


class AuthMiddleware:
    """ASGI middleware: authenticate, check the role (and a job token's scope), record the caller.

    ``token``: the server token (None: none configured). ``open_loopback``: a request without a
    token is the owner's (a loopback server started without a token) when its peer process passes
    :class:`openaml.server._peer.PeerCheck` (same OS user, not in a job or a deployment). The principal is put in
    ``scope["state"]["principal"]`` and in :data:`openaml.services._actor.current_actor`.
    """

    def __init__(self, app: Any, ctx: Any, *, token: str | None, open_loopback: bool) -> None:
        self.app = app
        self.ctx = ctx
        self.token = token.encode("utf-8") if token else None
        self.open_loopback = open_loopback
        self.peers = PeerCheck(ctx)

    @staticmethod
    def _tokenless_refusal(scope: Scope) -> str:
        why = (scope.get("state") or {}).get("tokenless_refusal") or "it could not be checked"
        return (f"missing token: a request without a token is the owner's only from the server's own OS user, "
                f"outside jobs and deployments, and {why}. Send Authorization: Bearer <token>: in a job, its "
                f"MLFLOW_TRACKING_TOKEN (or OPENAML_TOKEN); otherwise a user's token (openaml user create, run "
                f"by the owner); or start the server with --token-file")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path = _SLASHES.sub("/", scope.get("path") or "/")
        permission = required_permission(method, path)
        if permission == PUBLIC:
            if path in _HEALTH:  # answers everyone; an authenticated caller also learns the workspace name
                given = parse_bearer(scope)
                principal = await self._authenticate(given, scope) if given or self.open_loopback else None
                if principal is not None:
                    scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        given = parse_bearer(scope)
        if given is None and _has_authorization(scope):
            # a malformed Authorization header (another scheme, non-ASCII) is a wrong token, not "no token"
            await _deny(send, 401, "unauthorized", "missing or wrong token (Authorization: Bearer <token>)",
                        websocket=scope["type"] == "websocket")
            return
        from_query = False
        if given is None:
            given = parse_query_token(scope)
            from_query = given is not None
        cookie = session_cookie(scope) if given is None else None
        if cookie is not None and (users := self.ctx.services.get("users")) is not None:
            principal = users.verify_session(cookie) if len(cookie) < 4096 else None
            if principal is None:  # a stale cookie counts as no token
                principal = await self._authenticate(None, scope)
        else:
            principal = await self._authenticate(given, scope)
        ws = scope["type"] == "websocket"
        if from_query and principal is not None and principal.kind != "job" and not ws:
            # a browser's first visit with ?token=: a session cookie, and the same page without the token
            await self._start_session(scope, send, principal)
            return
        if principal is None and not ws and method == "GET" and _is_studio_page(scope, path):
            from openaml.server.studio._login import login_location  # a browser without a session: the login page

            query = (scope.get("query_string") or b"").decode("latin-1")
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", login_location(path, query).encode("latin-1")), (b"content-length", b"0"),
                (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if principal is None:
            await _deny(send, 401, "unauthorized", "missing or wrong token (Authorization: Bearer <token>)"
                        if given or not self.open_loopback else self._tokenless_refusal(scope), websocket=ws)
            return
        runner_job = _runner_job(path)
        if runner_job is not None:  # a runner's reports: its own job's runner token only, whatever the role
            refusal = runner_route_refusal(principal, runner_job)
            if refusal:
                await _deny(send, 403, "forbidden", f"{method} {path}: {refusal}", websocket=ws)
                return
            permission = READ
        body: bytes | None = None
        if method not in SAFE and (path.startswith(("/api/v1/datastores", "/mlflow/graphql"))
                                   or (principal.kind == "job" and path.startswith("/mlflow/")
                                       and "-artifacts/" not in path)):
            body = await _read_body(receive)
            if path.startswith("/api/v1/datastores") and method == "DELETE":
                from starlette.concurrency import run_in_threadpool

                permission = await run_in_threadpool(_datastore_delete_permission, self.ctx, path)
            elif path.startswith("/api/v1/datastores"):
                permission = _datastore_permission(body)
            elif path.startswith("/mlflow/graphql") and b"mutation" in body:
                permission = WRITE
        if permission not in ROLE_PERMISSIONS.get(principal.role, frozenset()):
            who = "the owner" if principal.kind == "owner" else f"user {principal.name!r} (role {principal.role})"
            if principal.kind == "job":
                who = f"job {principal.job!r} (submitted by {principal.name!r}, role {principal.role})"
            await _deny(send, 403, "forbidden", f"{who} may not {method} {path}: it needs "
                        f"{_PERMISSION_TEXT.get(permission, permission)}", websocket=ws)
            return
        if principal.kind == "job":
            query = (scope.get("query_string") or b"").decode("latin-1")
            try:  # most calls (logging to its run) are decided without a database look-up
                refusal = job_scope_refusal(None, principal, method, path, query, body)
            except _NeedsLookup:
                from starlette.concurrency import run_in_threadpool

                refusal = await run_in_threadpool(job_scope_refusal, self.ctx, principal, method, path, query, body)
            if refusal:
                await _deny(send, 403, "forbidden", f"the token of job {principal.job!r} is limited to that job's "
                            f"own run: {refusal}", websocket=ws)
                return
        if method == "POST" and path.endswith("/model-versions/create") and path.startswith(_MLFLOW_API):
            body = _tag_model_version(await _read_body(receive) if body is None else body, principal)
        if principal.kind == "job" and method == "POST" and body is not None and path.startswith(_MLFLOW_API) \
                and path.rstrip("/").endswith("/logged-models"):
            body = _attach_logged_model(body, principal)
        scope.setdefault("state", {})["principal"] = principal
        if body is not None:
            receive = _replay(body)
            scope["headers"] = [(k, v) for k, v in scope.get("headers") or ()
                                if k not in (b"content-length", b"transfer-encoding")]
            scope["headers"].append((b"content-length", str(len(body)).encode()))
        reset = current_actor.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_actor.reset(reset)

    async def _start_session(self, scope: Scope, send: Send, principal: Principal) -> None:
        users = self.ctx.services.get("users")
        value = users.session_token(principal) if users is not None else ""
        query = [(k, v) for k, v in parse_qs((scope.get("query_string") or b"").decode("latin-1")).items()
                 if k != "token"]
        location = (scope.get("root_path") or "") + (scope.get("path") or "/")
        if query:
            from urllib.parse import urlencode

            location += "?" + urlencode(query, doseq=True)
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={int(SESSION_S)}{secure}"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
                                (b"content-length", b"0"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b""})

    async def _authenticate(self, given: str | None, scope: Scope) -> Principal | None:
        if not given:
            if not self.open_loopback or self.token is not None:
                return None
            # the owner only from the server's own OS user, outside jobs and deployments (server/_peer.py)
            known, refusal = self.peers.cached(scope.get("client"), scope.get("server"))
            if not known:
                from starlette.concurrency import run_in_threadpool

                refusal = await run_in_threadpool(self.peers.refusal, scope.get("client"), scope.get("server"))
            if refusal is not None:
                scope.setdefault("state", {})["tokenless_refusal"] = refusal
                return None
            return OWNER
        raw = given.encode("utf-8", "surrogateescape")
        if self.token is not None and hmac.compare_digest(raw, self.token):
            return OWNER
        users = self.ctx.services.get("users")
        if users is None or len(raw) > 4096:
            return None
        seen = users.cached(given)
        if seen is not None:
            return seen
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(users.authenticate, given)


def _is_studio_page(scope: Scope, path: str) -> bool:
    """A studio page asked by a browser (it accepts HTML; not the API, MLflow or scoring)."""
    if path.startswith(("/api/", "/mlflow", "/endpoints/", "/health")):
        return False
    accept = b"".join(v for k, v in scope.get("headers") or () if bytes(k).lower() == b"accept")
    return b"text/html" in accept


def request_json_object(body: bytes) -> dict[str, Any] | None:
    """The JSON object of a request body as MLflow's server reads it (a body double-encoded as a
    JSON string is decoded a second time there), or None."""
    try:
        data = json.loads(body or b"{}")
        if isinstance(data, str):
            data = json.loads(data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _attach_logged_model(body: bytes, p: Principal) -> bytes:
    """A logged model a job creates outside any active run belongs to the job's run.

    MLflow 3's ``mlflow.<flavor>.log_model`` with no active run creates the LoggedModel with no
    ``source_run_id`` (it does not read ``MLFLOW_RUN_ID``); in a job that run is the job's own (the
    runner sets ``MLFLOW_RUN_ID``, as Azure ML does), so the model is recorded as the job's, and its
    files and registration pass the job token's scope (:func:`job_scope_refusal`)."""
    data = request_json_object(body)
    if data is None or data.get("source_run_id"):
        return body
    data["source_run_id"] = p.run_id
    return json.dumps(data).encode()


def _tag_model_version(body: bytes, p: Principal) -> bytes:
    """A model version registered through MLflow records who registered it (and from which job), as
    tags ``openaml.created_by`` and ``openaml.job``, as one registered through openaml does."""
    data = request_json_object(body)
    if data is None:
        return body
    tags = [t for t in (data.get("tags") or []) if isinstance(t, dict)
            and t.get("key") not in ("openaml.created_by", "openaml.job")]
    tags.append({"key": "openaml.created_by", "value": p.name})
    if p.job:
        tags.append({"key": "openaml.job", "value": p.job})
    data["tags"] = tags
    return json.dumps(data).encode()


def _datastore_permission(body: bytes) -> str:
    """Registering a datastore on a local path (``local``, or an fsspec URL with a local member in
    any case or chain: ``FILE:///x``, ``simplecache::file:///x``, a plain path) is for Owners."""
    from openaml.datastores import local_url_paths

    try:
        spec = json.loads(body or b"{}")
    except ValueError:
        return INFRA
    if not isinstance(spec, dict):
        return INFRA
    kind = str(spec.get("type") or "local").lower()
    url = str(spec.get("url") or "")
    if kind not in ("azure_blob", "azure_file", "azure_data_lake_gen1", "azure_data_lake_gen2", "one_lake", "hdfs") \
            and (kind != "fsspec" or local_url_paths(url)):
        return OWNER_ONLY
    return INFRA


def _datastore_delete_permission(ctx: Any, path: str) -> str:
    """Deleting a datastore needs what registering it needs (:func:`_datastore_permission` of its
    stored type and URL): the Owner role for one on a local path, else Contributor. An unknown name
    needs Contributor (the route then answers 404 naming the datastores that exist)."""
    from urllib.parse import unquote

    from openaml.errors import OpenAMLError

    name = unquote(path[len("/api/v1/datastores"):].strip("/"))
    name = name[len("azureml:"):] if name.startswith("azureml:") else name
    if not name or "/" in name:
        return INFRA
    try:
        stored = ctx.store.get_datastore(name)
    except OpenAMLError:
        return INFRA
    return _datastore_permission(json.dumps({"type": stored.get("type"), "url": stored.get("url")}).encode())


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_INSPECTED_BODY:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _deny(send: Send, status: int, code: str, message: str, *, websocket: bool = False) -> None:
    if websocket:  # before accept: closing refuses the handshake (403)
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    payload = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="openaml"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# ---------------------------------------------------------------------------------------------- job scope
_RUN_WRITES = ("runs/update", "runs/log-metric", "runs/log-parameter", "runs/log-batch", "runs/set-tag",
               "runs/delete-tag", "runs/log-model", "runs/log-inputs", "runs/outputs")
_REGISTRY_READS = ("registered-models/get", "registered-models/search", "registered-models/get-latest-versions",
                   "model-versions/get", "model-versions/search", "model-versions/get-download-uri",
                   "registered-models/alias")
_ARTIFACTS = ("/mlflow/api/2.0/mlflow-artifacts/", "/mlflow/ajax-api/2.0/mlflow-artifacts/")


def job_scope_refusal(ctx: Any | None, p: Principal, method: str, path: str, query: str, body: bytes | None) -> str | None:
    """Why a job's token may not make this request, or None when it may.

    Allowed: its own run (read and log: metrics, params, tags, inputs, models, artifacts), its
    experiment, MLflow logged models of its run, registering a version from its run, reading
    registered models and the files of the runs they came from, its own job record and the
    workspace's description. Everything else (other runs, other jobs, users, any other write) is
    refused with the reason. ``ctx`` None: raises ``_NeedsLookup`` where the answer needs the
    tracking store (call again with the context, off the event loop).
    """
    q = {k: v[0] for k, v in parse_qs(query).items() if v}
    if path.startswith("/api/v1/"):
        rest = path[len("/api/v1"):]
        if method in SAFE and (rest == "/workspace" or rest == f"/jobs/{p.job}" or rest.startswith(f"/jobs/{p.job}/")):
            return None
        if rest.startswith(f"/jobs/{p.job}/runner/") and p.scope == "runner":  # its runner's (services/runners.py)
            return None
        return f"{method} {path} is outside it"
    for api in _ARTIFACTS:
        if path.startswith(api):
            return _artifact_refusal(ctx, p, method, path[len(api):], q)
    if path.startswith("/mlflow/get-artifact") or path.startswith("/mlflow/model-versions/get-artifact"):
        return None if method in SAFE and q.get("run_uuid", q.get("run_id")) in (p.run_id, None) else \
            "another run's artifact"
    op = next((path[len(api):] for api in _MLFLOW_API if path.startswith(api)), None)
    if op is None:
        return f"{method} {path} is outside it"
    data: dict[str, Any] = (request_json_object(body) or {}) if body else {}
    if op in _RUN_WRITES or op in ("runs/get", "metrics/get-history"):
        run = data.get("run_id") or data.get("run_uuid") or q.get("run_id") or q.get("run_uuid")
        if run == p.run_id:
            return None
        if op == "runs/get" and run and _is_model_source(ctx, str(run)):
            return None
        return f"run {run!r} is not its run {p.run_id!r}"
    if op.startswith("experiments/get") and method in SAFE:
        return None
    if any(op.startswith(r) for r in _REGISTRY_READS) and (method in SAFE or op.endswith(("search", "versions"))):
        return None
    if op == "registered-models/create":
        return None
    if op == "model-versions/create":
        source = str(data.get("source") or "")
        if data.get("run_id") == p.run_id or f"/{p.run_id}/" in source or source.startswith(f"runs:/{p.run_id}/"):
            return None
        if source.startswith("models:/") and _logged_model_run(ctx, source[len("models:/"):].split("/")[0]) == p.run_id:
            return None
        return "a model version must come from its own run"
    if op == "logged-models" and method == "POST":
        if str(data.get("experiment_id")) == p.experiment_id and data.get("source_run_id") in (p.run_id, None):
            return None
        return "a logged model must belong to its own run and experiment"
    if op == "logged-models/search":  # a read (as GET logged-models/<id> is): runs:/<run>/model resolves through it
        return None
    if op.startswith("logged-models/"):
        model_id = op.split("/")[1]
        if method in SAFE or _logged_model_run(ctx, model_id) == p.run_id:
            return None
        return f"logged model {model_id!r} is not its run's"
    return f"{method} {path} is outside it"


def artifact_parts(rest: str, q: dict[str, str]) -> list[str] | None:
    """The artifact path a request to MLflow's artifact proxy names (``rest``: what follows
    ``mlflow-artifacts/``; ``q``: its query), as its non-empty parts (``.`` dropped); None for
    another proxy route. Multipart uploads (``mpu/create|complete|abort/<path>``) name ``<path>``."""
    for verb in ("mpu/create/", "mpu/complete/", "mpu/abort/"):
        if rest.startswith(verb):
            rest = "artifacts/" + rest[len(verb):]
    if rest.rstrip("/") == "artifacts":
        rel = q.get("path", "")
    elif rest.startswith("artifacts/"):
        rel = rest[len("artifacts/"):]
    else:
        return None
    return [s for s in rel.split("/") if s not in ("", ".")]


def _artifact_refusal(ctx: Any, p: Principal, method: str, rest: str, q: dict[str, str]) -> str | None:
    """Artifacts: its run's folder (read, write); logged models of its run; registered models' files (read)."""
    found = artifact_parts(rest, q)
    if found is None:
        return f"mlflow-artifacts/{rest} is outside it"
    parts, rel = found, "/".join(found)
    if ".." in parts:
        return "'..' in an artifact path"
    if len(parts) >= 2 and parts[0] == p.experiment_id and parts[1] == p.run_id:
        return None
    read = method in SAFE
    if parts[:1] == ["models"] and read:  # files of models registered through openaml
        return None
    if len(parts) >= 3 and parts[1] == "models":  # MLflow logged models: <experiment>/models/<model id>/
        if read or (parts[0] == p.experiment_id and _logged_model_run(ctx, parts[2]) == p.run_id):
            return None
        return f"logged model {parts[2]!r} is not its run's"
    if read and len(parts) >= 2 and _is_model_source(ctx, parts[1]):
        return None
    return f"artifact path {rel!r} is not in its run's folder {p.experiment_id}/{p.run_id}/"


def runner_route_refusal(p: Principal, job: str) -> str | None:
    """Why ``p`` may not call the runner routes of ``job`` (spec, state, heartbeat, logs, code, inputs,
    outputs), or None: only that job's runner token (scope ``runner``) may. The token a job's
    command gets (scope ``job``) is refused, so user code cannot report its own job's end, write
    its logs or put its outputs."""
    if p.kind != "job" or p.job != job:
        return f"takes the runner token of job {job!r} only"
    if p.scope != "runner":
        return (f"the token of job {job!r}'s command (scope 'job': $OPENAML_TOKEN, $MLFLOW_TRACKING_TOKEN) "
                "may not call its runner's routes: only the job's runner reports its state, logs and outputs")
    return None


_RUNNER_ROUTE = re.compile(r"/api/v1/jobs/([^/]+)/runner(?:/|$)")


def _runner_job(path: str) -> str | None:
    """The job of a runner route (``/api/v1/jobs/<name>/runner/...``), else None."""
    m = _RUNNER_ROUTE.match(path)
    return m.group(1) if m else None


class _NeedsLookup(Exception):
    """Raised by the scope check called without a context when the answer needs the tracking store."""


def _logged_model_run(ctx: Any, model_id: str) -> str | None:
    if ctx is None:
        raise _NeedsLookup
    try:
        return ctx.tracking.store.get_logged_model(model_id).source_run_id
    except Exception:  # noqa: BLE001 - unknown model: not the job's
        return None


def _is_model_source(ctx: Any, run_id: str) -> bool:
    """Whether a registered model version came from run ``run_id`` (its files are a model's files)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", run_id):
        return False
    if ctx is None:
        raise _NeedsLookup
    try:
        return bool(ctx.tracking.registry.search_model_versions(f"run_id = '{run_id}'", max_results=1))
    except Exception:  # noqa: BLE001
        return False
