"""Client credentials keyed by server URL: a token is sent only to the server it was issued for.

``$OPENAML_HOME/credentials.json`` (mode 0600) maps a normalised server URL
(``scheme://host:port``) to its bearer token. The client looks a URL's token up here, so a
``.openaml/config.json`` planted in a parent folder of a cloned repository that points to
another URL gets no token (the ``az login``/``docker login`` model: credentials per server).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from openaml._settings import openaml_home
from openaml.errors import ValidationError

__all__ = ["credentials_file", "normalize_url", "load_token", "save_token", "forget_token"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def credentials_file(environ: dict[str, str] | None = None) -> Path:
    return openaml_home(environ) / "credentials.json"


def normalize_url(url: str) -> str:
    """``HTTP://Host:8080/api/`` -> ``http://host:8080`` (the default port made explicit).

    Raises:
        ValidationError: not an http(s) URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or port is None:
        raise ValidationError(f"{url!r} is not an http(s) server URL (e.g. http://127.0.0.1:8080)")
    host = parts.hostname.lower()
    return f"{parts.scheme.lower()}://{'[' + host + ']' if ':' in host else host}:{port}"


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_token(url: str, environ: dict[str, str] | None = None) -> str | None:
    """The token saved for ``url``'s server, or None (also for a malformed URL or file)."""
    try:
        key = normalize_url(url)
    except ValidationError:
        return None
    entry = _read(credentials_file(environ)).get(key)
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def save_token(url: str, token: str, environ: dict[str, str] | None = None) -> Path:
    """Save ``token`` for ``url``'s server (file and folder owner-only). Returns the file."""
    key = normalize_url(url)
    path = credentials_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read(path)
    data[key] = {"token": token}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def forget_token(url: str, environ: dict[str, str] | None = None) -> bool:
    """Remove ``url``'s token. Returns whether one was saved."""
    key = normalize_url(url)
    path = credentials_file(environ)
    data = _read(path)
    if key not in data:
        return False
    del data[key]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    return True
