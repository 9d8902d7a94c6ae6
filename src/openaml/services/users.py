"""Users, roles and tokens: user tokens (hashed), job-scoped tokens (signed), secrets sealed at rest.

- A user's token is ``oau_`` + 32 random bytes (url-safe base64), shown once at creation; the
  store keeps its SHA-256 only, so a copy of the database gives no token.
- A job's token is ``oaj1.<claims>.<signature>``: claims ``{job, run, exp_id, until, scope}``
  (base64url JSON) signed with HMAC-SHA256 under the workspace's signing secret (random, stored
  encrypted in the metadata database). It is valid until ``until`` and only while the job is not
  terminal, and only for the job's own run (``server/_auth.py`` enforces the scope). Each job has
  two: its runner's (``scope: runner``, :meth:`UserService.runner_token`: also the job's runner
  routes, its reports, logs and outputs) and its command's (``scope: job``,
  :meth:`UserService.job_token`: its run and its record only; the runner routes refuse it, so
  user code cannot report its own job Completed). Their rights are the submitter's role; a
  submitter deleted while the job runs leaves it running with the role recorded at submission
  (Azure ML: a removed user's submitted jobs keep running, queued ones start).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

import pydantic

from openaml.constants import TERMINAL_JOB_STATUSES
from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._user import User
from openaml.errors import NotFoundError
from openaml.records import UserRecord
from openaml.services._actor import OWNER, Principal
from openaml.services._context import WorkspaceContext
from openaml.store import UserRepository

__all__ = ["UserService", "hash_token", "JOB_TOKEN_PREFIX", "USER_TOKEN_PREFIX", "SESSION_PREFIX"]

USER_TOKEN_PREFIX = "oau_"
JOB_TOKEN_PREFIX = "oaj1."
SESSION_PREFIX = "oas1."
#: how long a browser session (the cookie a ``?token=`` visit gets) lasts
SESSION_S = 12 * 3600.0
_SECRET_META = "job_token_secret"
#: sessions ended by ``POST /logout`` before their expiry: {session id: expiry (epoch s)}, in the
#: store so that every server of the workspace refuses them
_REVOKED_META = "revoked_sessions"
_REVOKED_CACHE_S = 2.0
_JOB_CACHE_S = 1.0
_USER_CACHE_S = 10.0
# a job token outlives the job's own limit by this much at most (the job's end revokes it anyway)
JOB_TOKEN_MARGIN_S = 3600.0
JOB_TOKEN_DEFAULT_S = 7 * 24 * 3600.0
#: a job token's scopes: its command's, its runner's
_SCOPES = ("job", "runner")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UserService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self.repo = UserRepository(ctx.store)
        self._secret: bytes | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[float, Principal | None]] = {}
        self._users: dict[str, tuple[float, Principal]] = {}
        self._revoked: tuple[float, dict[str, float]] = (-_REVOKED_CACHE_S, {})

    # ------------------------------------------------------------------ users
    def create(self, spec: dict[str, Any], created_by: Principal | None = None) -> UserRecord:
        """Create a user; the answer holds its ``token`` (shown this once).

        Raises:
            ValidationError: bad name or a role that is not built in (the roles are listed).
            ConflictError: the user exists.
        """
        try:
            user = User.model_validate({k: v for k, v in spec.items() if k in ("name", "role")})
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="user") from None
        token = USER_TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = self.repo.create(user.name, user.role, hash_token(token), (created_by or OWNER).name)
        return {**self._view(row), "token": token}

    @staticmethod
    def _view(row: dict[str, Any]) -> UserRecord:
        return {"name": row["name"], "role": row["role"], "created_by": row["created_by"],
                "created_at": row["created_at"].isoformat()}

    def list(self) -> list[UserRecord]:
        return [self._view(r) for r in self.repo.list()]

    def get(self, name: str) -> UserRecord:
        row = self.repo.get(name)
        if row is None:
            names = ", ".join(u["name"] for u in self.repo.list()) or "(none)"
            raise NotFoundError(f"user {name!r} not found; users: {names}", details={"name": name})
        return self._view(row)

    def delete(self, name: str) -> None:
        """Delete the user: its token stops working at once. Jobs it submitted before keep running
        (as in Azure ML) with the role recorded at submission, until they end."""
        self.repo.delete(name)
        with self._lock:
            self._jobs.clear()
            self._users.clear()

    # ------------------------------------------------------------------ authentication
    def authenticate(self, token: str) -> Principal | None:
        """The principal of a user or job token, or None (unknown, expired, revoked)."""
        if token.startswith(JOB_TOKEN_PREFIX):
            return self.verify_job_token(token)
        digest = hash_token(token)
        row = self.repo.by_token_hash(digest)
        if row is None:
            return None
        who = Principal(name=row["name"], role=row["role"], kind="user")
        with self._lock:
            if len(self._users) > 10000:
                self._users.clear()
            self._users[digest] = (time.monotonic(), who)
        return who

    def cached(self, token: str) -> Principal | None:
        """The principal of a token seen in the last seconds, answered without the database (so
        without leaving the event loop), else None: then call :meth:`authenticate`. Deleting a
        user empties the cache, so a deleted user's token is refused at once."""
        if token.startswith(JOB_TOKEN_PREFIX):
            return self.verify_job_token(token, cached_only=True)
        hit = self._users.get(hash_token(token))
        if hit is not None and time.monotonic() - hit[0] < _USER_CACHE_S:
            return hit[1]
        return None

    # ------------------------------------------------------------------ job tokens
    def _signing_secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    box = self.ctx.store.secret_box
                    stored = self.ctx.store.get_meta(_SECRET_META)
                    if stored is None:
                        stored = box.seal(secrets.token_urlsafe(32)) if box else secrets.token_urlsafe(32)
                        self.ctx.store.set_meta(_SECRET_META, stored)
                    self._secret = (box.open(stored) if box else stored).encode("ascii")
        return self._secret

    def job_token(self, row: dict[str, Any], *, scope: str = "job") -> str:
        """The token a job's command gets, for the job ``row`` (a store job dict): its run and its
        record only, until the job ends. ``scope="runner"``: :meth:`runner_token`."""
        if scope not in _SCOPES:
            raise ValueError(f"job token scope {scope!r}; scopes: {', '.join(_SCOPES)}")
        rt = row.get("runtime") or {}
        limit = float(rt.get("timeout") or 0) or JOB_TOKEN_DEFAULT_S
        claims = {"job": row["name"], "run": row["name"], "exp_id": str(rt.get("experiment_id") or ""),
                  "until": int(time.time() + limit + JOB_TOKEN_MARGIN_S), "scope": scope}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._signing_secret(), body.encode(), hashlib.sha256).digest())
        return f"{JOB_TOKEN_PREFIX}{body}.{sig}"

    def runner_token(self, row: dict[str, Any]) -> str:
        """The token a job's runner reports with (handed to the runner only, on its stdin): the job
        token's rights plus the job's runner routes (spec, state, logs, code, inputs, outputs)."""
        return self.job_token(row, scope="runner")

    def verify_job_token(self, token: str, *, cached_only: bool = False) -> Principal | None:
        """The principal of a valid job token, or None. ``cached_only``: None unless the job's state is
        known without the database."""
        try:
            body, sig = token[len(JOB_TOKEN_PREFIX):].split(".", 1)
            want = _b64(hmac.new(self._signing_secret(), body.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(sig.encode(), want.encode()):
                return None
            claims = json.loads(_unb64(body))
            job, until = str(claims["job"]), float(claims["until"])
            scope = str(claims.get("scope") or "job")  # a token from before scopes: the command's
        except (ValueError, KeyError, TypeError, UnicodeError):
            return None
        if time.time() > until:
            return None
        if cached_only:
            hit = self._jobs.get(job)
            if hit is None or time.monotonic() - hit[0] >= _JOB_CACHE_S:
                return None
        who = self._job_submitter(job)
        if who is None:
            return None
        return Principal(name=who.name, role=who.role, kind="job", job=job, run_id=str(claims.get("run") or job),
                         experiment_id=str(claims.get("exp_id") or ""), scope=scope if scope in _SCOPES else "job")

    # ------------------------------------------------------------------ browser sessions
    def session_token(self, who: Principal) -> str:
        """A signed browser-session value for the owner or a user (never a job), valid for
        :data:`SESSION_S`: the cookie that a visit with ``?token=`` gets, so that the MLflow UI and
        the pages it loads work on a token server without the token in every URL."""
        claims = {"kind": who.kind, "name": who.name, "until": int(time.time() + SESSION_S),
                  "sid": secrets.token_urlsafe(12)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._signing_secret(), b"session." + body.encode(), hashlib.sha256).digest())
        return f"{SESSION_PREFIX}{body}.{sig}"

    def _session_claims(self, value: str) -> dict[str, Any] | None:
        """The claims of a session value whose signature holds (expiry not checked), else None."""
        try:
            body, sig = value[len(SESSION_PREFIX):].split(".", 1)
            want = _b64(hmac.new(self._signing_secret(), b"session." + body.encode(), hashlib.sha256).digest())
            if not value.startswith(SESSION_PREFIX) or not hmac.compare_digest(sig.encode(), want.encode()):
                return None
            claims = json.loads(_unb64(body))
            return claims if isinstance(claims, dict) else None
        except (ValueError, TypeError, UnicodeError):
            return None

    def verify_session(self, value: str) -> Principal | None:
        """The principal of a valid session value, or None (forged, expired, logged out, or its user
        deleted). A user's role is read again from the store (cached seconds), so a role change applies."""
        claims = self._session_claims(value)
        try:
            kind, name, until = str(claims["kind"]), str(claims["name"]), float(claims["until"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None
        if time.time() > until:
            return None
        if str(claims.get("sid", "")) in self._revoked_sessions():  # type: ignore[union-attr]
            return None
        if kind == "owner":
            return OWNER
        if kind != "user":
            return None
        row = self.repo.get(name)
        return None if row is None else Principal(name=row["name"], role=row["role"], kind="user")

    def revoke_session(self, value: str) -> bool:
        """End a browser session before its expiry (``POST /logout``): its id is recorded in the store
        until it would have expired, so that no server of the workspace accepts the cookie again
        (a copied cookie included). False when ``value`` is not a valid session (nothing to end)."""
        claims = self._session_claims(value)
        if claims is None or not claims.get("sid"):
            return False
        now = time.time()
        with self._lock:
            try:
                stored = json.loads(self.ctx.store.get_meta(_REVOKED_META) or "{}")
            except ValueError:
                stored = {}
            live = {k: float(v) for k, v in stored.items() if isinstance(v, (int, float)) and v > now}
            live[str(claims["sid"])] = float(claims.get("until") or now + SESSION_S)
            self.ctx.store.set_meta(_REVOKED_META, json.dumps(live))
            self._revoked = (time.monotonic(), live)
        return True

    def _revoked_sessions(self) -> dict[str, float]:
        """The ids of sessions ended by logout (read from the store at most every couple of seconds:
        another server's logout applies here within that)."""
        at, ids = self._revoked
        if time.monotonic() - at < _REVOKED_CACHE_S:
            return ids
        try:
            stored = json.loads(self.ctx.store.get_meta(_REVOKED_META) or "{}")
            ids = {str(k): float(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
        except (ValueError, TypeError):
            ids = {}
        self._revoked = (time.monotonic(), ids)
        return ids

    def forget_job(self, name: str) -> None:
        """Drop what is cached of job ``name``: called when it ends, so its token is refused at once."""
        with self._lock:
            self._jobs.pop(name, None)

    def _job_submitter(self, name: str) -> Principal | None:
        """The submitter of job ``name`` while it is not terminal, else None (cached for a second:
        a job logging many metrics costs one lookup a second, and its end revokes it within one).
        A submitter deleted since: the name and role recorded at submission (the job runs on)."""
        now = time.monotonic()
        with self._lock:
            hit = self._jobs.get(name)
        if hit is not None and now - hit[0] < _JOB_CACHE_S:
            return hit[1]
        try:
            row: dict[str, Any] | None = self.ctx.store.get_job(name)
        except NotFoundError:
            row = None
        who = None if row is None or row["status"] in TERMINAL_JOB_STATUSES else self.submitter(row, as_recorded=True)
        with self._lock:
            if len(self._jobs) > 1000:
                self._jobs.clear()
            self._jobs[name] = (now, who)
        return who

    def _job(self, name: str) -> dict[str, Any] | None:
        try:
            return self.ctx.store.get_job(name)
        except NotFoundError:
            return None

    def submitter(self, row: dict[str, Any] | None, *, as_recorded: bool = False) -> Principal | None:
        """Who submitted the job (its own record, else its parent's); None when that user was deleted,
        unless ``as_recorded``: then the name and role the job recorded at submission.

        Jobs from before users existed, and jobs started by the server itself, count as the owner's.
        """
        seen = 0
        while row is not None and seen < 20:
            rec = (row.get("runtime") or {}).get("created_by")
            if rec:
                if rec.get("kind") != "user":
                    return OWNER
                user = self.repo.get(str(rec.get("name")))
                if user is None and as_recorded and rec.get("role"):
                    return Principal(name=str(rec["name"]), role=str(rec["role"]), kind="user")
                return Principal(name=user["name"], role=user["role"], kind="user") if user else None
            parent = row.get("parent_name")
            row = self._job(parent) if parent else None
            seen += 1
        return OWNER

    # ------------------------------------------------------------------ secrets at rest
    def seal_existing(self) -> int:
        """Encrypt secrets stored in clear by an older version; returns how many records changed."""
        from openaml.store import EndpointRepository

        n = self.ctx.store.seal_plain_datastore_credentials()
        n += EndpointRepository(self.ctx.store).seal_plain()
        self._signing_secret()
        stored = self.ctx.store.get_meta(_SECRET_META)
        box = self.ctx.store.secret_box
        if stored is not None and box is not None and not box.is_sealed(stored):
            self.ctx.store.set_meta(_SECRET_META, box.seal(stored))
            n += 1
        if n:
            self.ctx.store.compact()  # the plain values must not survive in freed pages or the WAL
        return n
