"""What the object-store datastores (``s3``, ``azure_blob``) share: credentials kept apart from the
definition, a probe that proves them at registration, and transfers run concurrently file by file.

Memory: a large file is read and written in blocks of a few MiB (:data:`BLOCK` for S3, its
smallest multipart part; 4 MiB for Azure Blob, whose files up to 16 MiB are written in one request
and read in 8 MiB then 4 MiB ranges), at most :data:`PARALLEL` files at a time, so a transfer
holds at most ``PARALLEL * 16 MiB`` whatever the sizes (tests/contracts: a 48 MiB file moves with
under 24 MiB of Python allocations). Fewer, larger requests matter more than memory here:
bench/datastores.py measured Azurite writes 2x slower than the raw client with 3 MiB blocks.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from openaml.datastores._base import DatastorePort, _local_files
from openaml.datastores._paths import safe_join
from openaml.errors import NotFoundError, OpenAMLError, ValidationError, unreachable_reason

__all__ = ["BLOCK", "PARALLEL", "RemoteDatastore"]

#: bytes per block read or written (5 MiB: S3's smallest multipart part)
BLOCK = 5 << 20
#: files transferred at a time by get/put of a folder
PARALLEL = 8


class RemoteDatastore(DatastorePort):
    """A datastore in an object store reached over the network (no local path).

    ``credentials`` in the definition (the secret part) are kept on the port, out of
    :meth:`spec`; a runner gets them with its spec from the server, never from the job's row.
    """

    def __init__(self, name: str, definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> None:
        fields = dict(definition)
        creds = fields.pop("credentials", None) or {}
        if not isinstance(creds, Mapping):
            raise ValidationError(f"datastore {name!r}: 'credentials' must be a mapping", details={"field": "credentials"})
        self._credentials = {k: v for k, v in creds.items() if v is not None}
        super().__init__(name, fields, base=base)

    @property
    def credentials(self) -> dict[str, Any]:
        """The secret part of the definition (empty for the default credential chain)."""
        return dict(self._credentials)

    def _probe(self) -> None:
        """One cheap authenticated call on the bucket or container (raises the client's error)."""
        raise NotImplementedError

    def _where(self) -> str:
        return self.url("")

    #: extra keyword arguments of the filesystem's ``put_file`` (part sizes, concurrency in a file)
    _put_kwargs: dict[str, Any] = {}
    #: extra keyword arguments of the filesystem's ``get_file``
    _get_kwargs: dict[str, Any] = {}

    #: the definition's field that says where the service is (named when it cannot be reached)
    ENDPOINT_FIELD: str = "endpoint"

    def describe(self) -> str:
        """Where the datastore points (``bucket 'b' at http://...``), no secrets."""
        return self._where()

    def endpoint_field(self) -> str:
        """The field that says where the service is (:attr:`ENDPOINT_FIELD`)."""
        return self.ENDPOINT_FIELD

    def _credentials_hint(self, given: list[str]) -> str:
        """What to check when the client refused the credentials (``given``: the secret fields set)."""
        return "check the credentials"

    def probe(self) -> str | None:
        """Prove the definition with one listing call of the bucket or container.

        Returns None when it answered.

        Raises:
            ValidationError: naming the datastore, the field and the error (never the secrets), when
                the service answered with an error (wrong credentials, no such bucket or
                container); when it could not be reached (a name that does not resolve, a refused
                connection, a timeout: field :meth:`endpoint_field`); or when the client refused the
                credentials before sending anything (a malformed key: field ``credentials.<key>``, with
                what to check for the datastore's type); or when :meth:`check_definition` refuses it.
                Registering without the check: ``skip_validation`` (services/datastores.py).
        """
        self.check_definition()
        try:
            self._probe()
        except Exception as exc:  # noqa: BLE001 - any client error is the answer to report
            what = _describe(exc)
            if _answered(exc):
                raise ValidationError(
                    f"datastore {self.name!r} ({self.type}): cannot list {self._where()}: {what}; "
                    "check the name, the endpoint and the credentials",
                    details={"datastore": self.name, "type": self.type, "error": what}) from None
            if _unreachable(exc):
                what = _reach_reason(exc)
                field = self.endpoint_field()
                raise ValidationError(
                    f"datastore {self.name!r} ({self.type}): field {field!r}: {self._where()} cannot be reached "
                    f"({what}); check {field!r} and the network, or register it unchecked (CLI "
                    "--skip-validation, SDK skip_validation=True) when only the jobs' machines reach it. "
                    "Nothing was stored",
                    details={"datastore": self.name, "type": self.type, "field": field, "error": what}) from None
            given = [k for k in ("account_key", "sas_token", "secret_access_key", "access_key_id", "session_token")
                     if self._credentials.get(k)]
            field = "credentials" + (f".{given[0]}" if given else "")
            raise ValidationError(
                f"datastore {self.name!r} ({self.type}): field {field!r}: the credentials are refused before "
                f"{self._where()} is asked ({what}); {self._credentials_hint(given)}. Nothing was stored",
                details={"datastore": self.name, "type": self.type, "field": field, "error": what}) from None
        return None

    #: keyword arguments of the filesystem's ``open`` for reading (block size and cache: bounded memory)
    _read_kwargs: dict[str, Any] = {}

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        """As :meth:`DatastorePort.open`; reads go through a read-ahead cache of one block."""
        try:
            return self._open(path, mode)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def _open(self, path: str, mode: str) -> IO[Any]:
        if "r" not in mode or not self._read_kwargs:
            return super().open(path, mode)
        real = self._real(path)
        if self.fs.isdir(real) or not path.strip("/"):
            return super().open(path, mode)  # refused there, with the contract's error
        try:
            fh = self.fs.open(real, "rb", **self._read_kwargs)
        except FileNotFoundError:
            raise NotFoundError(f"{self.uri(path)} does not exist") from None
        return fh if "b" in mode else io.TextIOWrapper(fh, encoding="utf-8")

    # ------------------------------------------------------------------ errors name the datastore
    def _failed(self, exc: BaseException) -> OpenAMLError:
        if isinstance(exc, OpenAMLError):
            return exc
        return ValidationError(f"datastore {self.name!r} ({self.type}): {self._where()}: {_describe(exc)}",
                               details={"datastore": self.name, "type": self.type, "error": _describe(exc)})

    def read_range(self, path: str, start: int, length: int) -> bytes:
        try:
            return super().read_range(path, start, length)
        except Exception as exc:  # noqa: BLE001 - the client's error, named
            raise self._failed(exc) from None

    def exists(self, path: str = "") -> bool:
        try:
            return super().exists(path)
        except Exception as exc:  # noqa: BLE001 - the client's error, named
            raise self._failed(exc) from None

    def info(self, path: str = "") -> dict[str, Any]:
        try:
            return super().info(path)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def isdir(self, path: str = "") -> bool:
        try:
            return super().isdir(path)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def isfile(self, path: str = "") -> bool:
        try:
            return super().isfile(path)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def ls(self, path: str = "") -> list[dict[str, Any]]:
        try:
            return super().ls(path)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def walk(self, path: str = "") -> Iterator[tuple[str, int]]:
        try:
            return iter(list(super().walk(path)))  # one listing call: nothing is lost by listing first
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def rm(self, path: str, recursive: bool = False) -> None:
        try:
            super().rm(path, recursive)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    # ------------------------------------------------------------------ transfers, concurrent
    def get(self, path: str, local_dest: str | os.PathLike[str]) -> int:
        """As :meth:`DatastorePort.get`, :data:`PARALLEL` files at a time."""
        try:
            return self._get(path, local_dest)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def _get(self, path: str, local_dest: str | os.PathLike[str]) -> int:
        dest = Path(local_dest)
        pairs: list[tuple[str, str]] = []
        for rel, _size in self.walk(path):
            target = dest if rel == "" else safe_join(dest, rel, what=f"file of {self.uri(path)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            pairs.append((self._real(posixpath.join(path, rel) if rel else path), str(target)))
        if pairs:
            self._get_files(pairs)
        elif self.isdir(path):
            dest.mkdir(parents=True, exist_ok=True)
        return len(pairs)

    def put(self, local_src: str | os.PathLike[str], path: str, *, move: bool = False) -> int:
        """As :meth:`DatastorePort.put`, :data:`PARALLEL` files at a time (``move`` removes nothing
        here: the staged source is the caller's to delete)."""
        try:
            return self._put(local_src, path)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def _put(self, local_src: str | os.PathLike[str], path: str) -> int:
        src = Path(local_src)
        if not src.exists():
            raise NotFoundError(f"{src} does not exist (nothing to put at {self.uri(path)})")
        if src.is_file():
            self._check_not_folder(path)
            self._put_files([(str(src), self._real(path))])
            return 1
        self._real(path)
        rels = list(_local_files(src))
        if rels:
            self._put_files([(str(src / rel), self._real(posixpath.join(path, rel) if path else rel)) for rel in rels])
        return len(rels)

    def _get_files(self, pairs: list[tuple[str, str]]) -> None:
        """Copy ``(fs path, local path)`` pairs, :data:`PARALLEL` files at a time (the local folders exist)."""
        self.fs.get([r for r, _ in pairs], [local for _, local in pairs], batch_size=PARALLEL, **self._get_kwargs)

    def _put_files(self, pairs: list[tuple[str, str]]) -> None:
        """Copy ``(local path, fs path)`` pairs, :data:`PARALLEL` files at a time."""
        self.fs.put([local for local, _ in pairs], [r for _, r in pairs], batch_size=PARALLEL, **self._put_kwargs)

    def _check_not_folder(self, path: str) -> None:
        if self.fs.isdir(self._real(path)):
            raise ValidationError(f"{self.uri(path)} is a folder; a file cannot replace it")


def _answered(exc: BaseException) -> bool:
    """Whether the service answered (an HTTP error: botocore's ClientError, azure's
    HttpResponseError with a status) rather than could not be reached."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(getattr(cause, "response", None), dict) or getattr(cause, "status_code", None):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


#: what a client's exception class is called when the service could not be reached (botocore,
#: aiohttp, azure-core, requests, urllib3)
_UNREACHABLE_NAMES = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError",
                      "ClientConnectorError", "ServerTimeoutError", "ServiceRequestError", "ServiceRequestTimeoutError",
                      "ServiceResponseError", "NewConnectionError", "MaxRetryError", "ProxyConnectionError")


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the service could not be reached (rather than that the client refused
    the definition before sending anything, as a malformed key)."""
    import socket

    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return False
        if isinstance(cause, (ConnectionError, TimeoutError, socket.gaierror, socket.timeout)) \
                or type(cause).__name__ in _UNREACHABLE_NAMES:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _reach_reason(exc: BaseException) -> str:
    """Why the service could not be reached, in a few words (not the client's connection-pool text)."""
    return unreachable_reason(exc) or _describe(exc)


def _describe(exc: BaseException) -> str:
    """The service's error code and message, one line (no request headers, so no secrets)."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "response", None) is None and getattr(cause, "error_code", None) is None:
        cause = cause.__cause__ or cause.__context__  # s3fs raises OSError from botocore's ClientError
    exc = cause or exc
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)  # azure's StorageErrorCode enum
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        err = response.get("Error") or {}
        code = err.get("Code") or code
        msg = err.get("Message") or str(exc)
    else:
        msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = str(msg).strip().splitlines()[0] if str(msg).strip() else type(exc).__name__
    return f"{code}: {first}" if code and str(code) not in first else first
