"""The one HTTP seam of the SDK: JSON requests to the workspace server, errors mapped back."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx

from openaml.errors import OpenAMLError, ServerUnavailableError, error_from_payload

__all__ = ["Transport", "ChunkReader"]


class ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks (a streamed download), so that
    ``tarfile``'s stream mode unpacks it as it arrives: at most one chunk is held in memory."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = chunk
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class Transport:
    """Requests to ``<url>/api/v1``. ``token`` goes in ``Authorization: Bearer``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # verify=False for http:// URLs: httpx would otherwise load the CA bundle (~0.1-0.2 s of CLI
        # start-up) for a client that never speaks TLS; https URLs verify as usual
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                    verify=not self.url.startswith("http://"))

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                content: Any = None, headers: dict[str, str] | None = None) -> Any:
        try:
            resp = self._client.request(method, "/api/v1" + path, json=json, params=_clean(params),
                                        content=content, headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnavailableError(f"cannot reach the openaml server at {self.url}: {exc}") from None
        return self._handle(resp)

    @staticmethod
    def _handle(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                payload = resp.json()
            except ValueError:
                raise OpenAMLError(f"HTTP {resp.status_code}: {resp.text[:500]}") from None
            raise error_from_payload(payload, resp.status_code)
        if resp.status_code == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.content

    def stream(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> Iterator[bytes]:
        try:
            with self._client.stream(method, "/api/v1" + path, params=_clean(params), timeout=None) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._handle(resp)
                yield from resp.iter_bytes()
        except httpx.TransportError as exc:
            raise ServerUnavailableError(f"lost the openaml server at {self.url}: {exc}") from None

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}
