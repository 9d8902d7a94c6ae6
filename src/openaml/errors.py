"""Domain errors with stable codes.

Every error raised by openaml below the edges is an :class:`OpenAMLError`. Its ``code`` is
stable (part of the REST contract): one handler in the server maps codes to HTTP statuses and
the SDK maps them back to the same exception classes, so the CLI prints the same message
whatever side raised it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OpenAMLError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "UnsupportedError",
    "PathEscapeError",
    "ServerUnavailableError",
    "JobFailedError",
    "EnvironmentBuildError",
    "error_from_payload",
    "unreachable_reason",
]


class OpenAMLError(Exception):
    """Base error. ``code`` is stable; ``details`` is JSON-serialisable context."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(OpenAMLError):
    """Bad input: names the file, field path, value received and what is allowed."""

    code = "validation_error"
    http_status = 400


class NotFoundError(OpenAMLError):
    code = "not_found"
    http_status = 404


class ConflictError(OpenAMLError):
    """The request conflicts with stored state (e.g. an immutable version exists)."""

    code = "conflict"
    http_status = 409


class UnsupportedError(OpenAMLError):
    """A feature Azure ML has that this installation cannot provide (e.g. no container engine)."""

    code = "unsupported"
    http_status = 422


class PathEscapeError(ValidationError):
    """A user-given path tried to leave its folder (``..``, absolute path, symlink)."""

    code = "path_escape"
    http_status = 400


class ServerUnavailableError(OpenAMLError):
    code = "server_unavailable"
    http_status = 503


class JobFailedError(OpenAMLError):
    """Raised by ``jobs.stream`` when the streamed job ends Failed (azure-ai-ml raises too)."""

    code = "job_failed"
    http_status = 500


class EnvironmentBuildError(OpenAMLError):
    """Building an environment's virtualenv failed; the message ends with the tail of uv's output.

    ``details`` holds ``spec_hash`` and ``log`` (the full build log's path on the server).
    """

    code = "environment_build_failed"
    http_status = 422


_BY_CODE: dict[str, type[OpenAMLError]] = {
    cls.code: cls
    for cls in (
        OpenAMLError,
        ValidationError,
        NotFoundError,
        ConflictError,
        UnsupportedError,
        PathEscapeError,
        ServerUnavailableError,
        JobFailedError,
        EnvironmentBuildError,
    )
}


def error_from_payload(payload: dict[str, Any], status: int) -> OpenAMLError:
    """Rebuild the server's error on the client side from its JSON body."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return OpenAMLError(f"HTTP {status}: {payload!r}")
    cls = _BY_CODE.get(str(err.get("code")), OpenAMLError)
    return cls(str(err.get("message", "")), details=err.get("details") or {})


#: (text in a client's error or its causes, what it means in a few words): the network failures
#: of requests/urllib3, botocore, aiohttp and the standard library
_UNREACHABLE = (("Name or service not known", "the host name does not resolve"),
                ("Failed to resolve", "the host name does not resolve"),
                ("Temporary failure in name resolution", "the host name does not resolve"),
                ("Could not connect to the endpoint URL", "connection refused"),
                ("Connection refused", "connection refused"), ("Cannot connect to host", "connection refused"),
                ("No route to host", "no route to host"), ("timed out", "timed out"),
                ("Connection reset", "connection reset"), ("Connection aborted", "connection aborted"),
                ("RemoteDisconnected", "connection closed"))


def unreachable_reason(exc: BaseException) -> str | None:
    """Why a service could not be reached, in a few words (``connection refused``), read from
    ``exc`` and its causes (a client's connection-pool text names the reason deep inside); None
    when none of them says."""
    texts: list[str] = []
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return next((said for key, said in _UNREACHABLE if any(key in t for t in texts)), None)
