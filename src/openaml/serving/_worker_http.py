"""The HTTP surface a deployment worker shows to scoring code: errors, JSON of results, AMLRequest.

Standard library only at import (the worker runs in any environment). ``AMLRequest`` is what a
``@rawhttp`` ``run(request)`` receives; Azure's inference server passes a Flask request, so where
Flask (or werkzeug) is installed in the deployment's environment the request *is* one, built from
the body and headers: ``files``, ``form``, ``args``, ``headers``, ``get_data()``, ``get_json()``,
``method``, ``path`` behave as in Azure. Without them, a small stand-in offers the same names for
JSON and raw bodies (``files`` and ``form`` parse multipart and url-encoded bodies with the
standard library).
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
import types
from typing import Any
from urllib.parse import parse_qs

__all__ = ["AMLResponse", "HTTPError", "dumps", "install_aml_modules", "log", "make_request", "rawhttp"]


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


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def dumps(obj: Any) -> bytes:
    """Valid JSON always: NaN and infinities become null, as azureml-inference-server answers them."""
    try:
        return json.dumps(obj, default=_default, allow_nan=False).encode()
    except ValueError:  # a NaN or an infinity somewhere (rare): the slow path
        plain = json.loads(json.dumps(obj, default=_default, allow_nan=True))
        return json.dumps(_finite(plain), allow_nan=False).encode()


# ---------------------------------------------------------------------- AMLRequest / AMLResponse
def _environ(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "localhost", "SERVER_PORT": "5001", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.get("content-type", ""),
    }
    for k, v in headers.items():
        if k not in ("content-type", "content-length"):
            env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


class _PlainRequest:
    """The Flask request's commonly used surface, for environments without Flask or werkzeug."""

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.full_path = path + "?" + query
        self.query_string = query.encode()
        self.headers = _Headers(headers)
        self.args = {k: v[0] for k, v in parse_qs(query).items()}
        self.data = body
        self.content_type = headers.get("content-type")
        self.mimetype = (self.content_type or "").split(";")[0].strip().lower()
        self._form: tuple[dict[str, str], dict[str, Any]] | None = None

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not force and self.mimetype != "application/json" and not self.mimetype.endswith("+json"):
            if silent:
                return None
            raise HTTPError(415, "Did not attempt to load JSON data because the request Content-Type was not "
                                 "'application/json'.")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise HTTPError(400, "Failed to decode JSON object") from None

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def form(self) -> dict[str, str]:
        return self._parse_form()[0]

    @property
    def files(self) -> dict[str, Any]:
        return self._parse_form()[1]

    def _parse_form(self) -> tuple[dict[str, str], dict[str, Any]]:
        if self._form is None:
            form: dict[str, str] = {}
            files: dict[str, Any] = {}
            if self.mimetype == "application/x-www-form-urlencoded":
                form = {k: v[0] for k, v in parse_qs(self.data.decode("utf-8", "replace")).items()}
            elif self.mimetype == "multipart/form-data":
                from email.parser import BytesParser
                from email.policy import HTTP

                msg = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + (self.content_type or "").encode() + b"\r\n\r\n" + self.data)
                for part in msg.iter_parts():
                    param = part.get_param("name", header="content-disposition")
                    name = param if isinstance(param, str) else None  # an RFC 2231 tuple is not a field name
                    filename = part.get_filename()
                    raw = part.get_payload(decode=True)
                    payload = raw if isinstance(raw, bytes) else b""
                    if filename is not None and name is not None:
                        files[name] = _File(payload, filename, part.get_content_type())
                    elif name is not None:
                        form[name] = payload.decode("utf-8", "replace")
            self._form = (form, files)
        return self._form


class _Headers(dict):  # type: ignore[type-arg]
    """Case-insensitive header lookup, as werkzeug's ``Headers``."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class _File:
    """An uploaded file, as werkzeug's ``FileStorage``: ``filename``, ``content_type``, ``read()``, ``save()``."""

    def __init__(self, data: bytes, filename: str, content_type: str) -> None:
        self.stream = io.BytesIO(data)
        self.filename = filename
        self.content_type = self.mimetype = content_type

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, dst: Any) -> None:
        if isinstance(dst, str):
            with open(dst, "wb") as fh:
                fh.write(self.stream.getvalue())
        else:
            dst.write(self.stream.getvalue())


_REQUEST_CLASS: Any = None


def _request_class() -> Any:
    """Flask's Request where Flask is installed (Azure passes one), else werkzeug's, else the stand-in."""
    global _REQUEST_CLASS
    if _REQUEST_CLASS is None:
        base: Any = None
        try:
            from flask import Request as flask_request

            base = flask_request
        except Exception:  # noqa: BLE001 - no Flask in this environment
            try:
                from werkzeug.wrappers import Request as werkzeug_request

                base = werkzeug_request
            except Exception:  # noqa: BLE001
                base = None
        if base is None:
            _REQUEST_CLASS = _PlainRequest
        else:
            _REQUEST_CLASS = type("AMLRequest", (base,), {"__module__": "azureml.contrib.services.aml_request"})
    return _REQUEST_CLASS


def make_request(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
    """The ``AMLRequest`` for one HTTP request (``headers`` with lower-case names)."""
    cls = _request_class()
    if cls is _PlainRequest:
        return cls(method, path, query, headers, body)
    return cls(_environ(method, path, query, headers, body))


class AMLResponse:
    """What a run function may return for full control of status, body and headers."""

    def __init__(self, message: Any = None, status_code: int = 200, response_headers: dict[str, str] | None = None,
                 json_str: bool = False) -> None:
        if json_str and not isinstance(message, (str, bytes)):
            message = dumps(message)
        self.body = message.encode() if isinstance(message, str) else (message or b"")
        self.status_code = status_code
        self.headers = dict(response_headers or {})


def rawhttp(fn: Any) -> Any:
    fn._openaml_rawhttp = True
    return fn


def install_aml_modules() -> None:
    """Make ``azureml.contrib.services.aml_request``/``aml_response`` importable (Azure's server does too)."""
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
    req.AMLRequest = _AMLRequestAlias  # type: ignore[attr-defined]
    req.rawhttp = rawhttp  # type: ignore[attr-defined]
    resp = types.ModuleType("azureml.contrib.services.aml_response")
    resp.AMLResponse = AMLResponse  # type: ignore[attr-defined]
    sys.modules[req.__name__] = req
    sys.modules[resp.__name__] = resp


class _AMLRequestMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _request_class())


class _AMLRequestAlias(metaclass=_AMLRequestMeta):
    """``AMLRequest`` as imported by score.py: ``isinstance(request, AMLRequest)`` holds for what run() gets."""
