"""The ``type: s3`` datastore (an openaml extension): a bucket of an S3 API, through fsspec's s3fs.

Definition: ``bucket`` (required), ``endpoint_url`` (an S3-compatible server: MinIO, Ceph, moto;
AWS when absent), ``region``; ``credentials`` ``{access_key_id, secret_access_key[, session_token]}``
or none for boto's default chain (environment, ``~/.aws``, instance role). The credentials are
kept on the port and never part of :meth:`~openaml.datastores.DatastorePort.spec`.

Folder and file transfers (``put``/``get``) go through boto3's managed transfer (``S3Transfer``,
``upload_file``/``download_file``), :data:`~openaml.datastores._remote.PARALLEL` files at a time
in threads, each file with :data:`TRANSFER` (8 MiB parts, 2 requests at a time, a bounded write
queue): the raw client's own path, streamed from and to the files, with no copy or hash of
openaml's (bench/datastores.py's boto3 peer uses the same :data:`TRANSFER`, so the comparison
measures what openaml adds). s3fs's single event-loop thread ran every file's signing and
checksums on one core (0.86x the raw client's writes). Listings, ``open`` and ``rm`` stay on s3fs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from openaml.datastores._remote import BLOCK, PARALLEL, RemoteDatastore
from openaml.errors import ValidationError

__all__ = ["S3DatastorePort", "TRANSFER"]

#: ``boto3.s3.transfer.TransferConfig`` keyword arguments of every file moved: multipart over 8 MiB
#: in 8 MiB parts (boto3's defaults), 2 parts of a file at a time and at most 16 x 256 KiB of a
#: download queued for writing, so a transfer holds about ``PARALLEL x 2 x 8 MiB`` at most
#: (boto3's default 10 requests and 100-chunk queue per file would be 10x that)
TRANSFER: dict[str, Any] = {"multipart_threshold": 8 << 20, "multipart_chunksize": 8 << 20,
                            "max_concurrency": 2, "max_io_queue": 16, "use_threads": True}


class S3DatastorePort(RemoteDatastore):
    """A bucket of an S3 API (``s3fs.S3FileSystem``); paths are keys under the bucket.

    Raises (constructor):
        ValidationError: no ``bucket``, or one with a ``/``.
    """

    type = "s3"
    _read_kwargs = {"block_size": 2 << 20, "cache_type": "readahead"}

    def __init__(self, name: str, definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> None:
        super().__init__(name, definition, base=base)
        bucket = str(self.definition.get("bucket") or "")
        if not bucket or "/" in bucket.strip("/"):
            raise ValidationError(f"s3 datastore {name!r} needs 'bucket': a bucket name without '/' (got {bucket!r})",
                                  details={"field": "bucket", "value": bucket})
        self._bucket = bucket.strip("/")
        self._fs: Any = None
        self._client: Any = None

    def client(self, *, attempts: int = 3, connect_timeout: float = 10, read_timeout: float = 60) -> Any:
        """A boto3 S3 client of this datastore's endpoint, region and credentials."""
        import boto3
        from botocore.config import Config

        creds = self.credentials
        return boto3.client(
            "s3", endpoint_url=self.definition.get("endpoint_url") or None,
            region_name=self.definition.get("region") or None, aws_access_key_id=creds.get("access_key_id"),
            aws_secret_access_key=creds.get("secret_access_key"), aws_session_token=creds.get("session_token"),
            config=Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=connect_timeout,
                          read_timeout=read_timeout, max_pool_connections=PARALLEL * TRANSFER["max_concurrency"] + 2))

    def _transfer_client(self) -> Any:
        if self._client is None:
            self._client = self.client()
        return self._client

    def _key(self, real: str) -> str:
        return real[len(self._bucket):].lstrip("/")

    def _put_files(self, pairs: list[tuple[str, str]]) -> None:
        from boto3.s3.transfer import TransferConfig

        client, config = self._transfer_client(), TransferConfig(**TRANSFER)
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda p: client.upload_file(p[0], self._bucket, self._key(p[1]), Config=config), pairs))

    def _get_files(self, pairs: list[tuple[str, str]]) -> None:
        from boto3.s3.transfer import TransferConfig

        client, config = self._transfer_client(), TransferConfig(**TRANSFER)
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda p: client.download_file(self._bucket, self._key(p[0]), p[1], Config=config), pairs))

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import s3fs

            creds = self.credentials
            client_kwargs: dict[str, Any] = {}
            if self.definition.get("region"):
                client_kwargs["region_name"] = str(self.definition["region"])
            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.definition.get("endpoint_url") or None,
                key=creds.get("access_key_id"), secret=creds.get("secret_access_key"),
                token=creds.get("session_token"), client_kwargs=client_kwargs,
                default_block_size=BLOCK, use_listings_cache=False, skip_instance_cache=True,
                config_kwargs={"retries": {"max_attempts": 3, "mode": "standard"}, "connect_timeout": 10})
        return self._fs

    @property
    def root(self) -> str:
        return self._bucket

    def url(self, path: str = "") -> str:
        return f"s3://{self._real(path)}"

    ENDPOINT_FIELD = "endpoint_url"

    def check_definition(self) -> None:
        """``endpoint_url``, when given, must be ``http(s)://host[:port]`` (boto3 refuses anything else
        with "Invalid endpoint", which says nothing of the field).

        Raises:
            ValidationError: field ``endpoint_url``, naming the value and the form it needs.
        """
        endpoint = self.definition.get("endpoint_url")
        if endpoint is None or endpoint == "":
            return
        parsed = urlsplit(str(endpoint))
        try:
            parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
            ok = parsed.scheme.lower() in ("http", "https") and bool(parsed.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise ValidationError(
                f"datastore {self.name!r} (s3): field 'endpoint_url': {endpoint!r} is not a valid endpoint URL; "
                "give http(s)://host[:port] of the S3 API (e.g. http://minio.internal:9000), or leave "
                "endpoint_url out for AWS. Nothing was stored",
                details={"datastore": self.name, "type": self.type, "field": "endpoint_url", "value": str(endpoint)})

    def _credentials_hint(self, given: list[str]) -> str:
        if not given:
            return ("no credentials were given and the server's default chain (AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role) found none; give credentials.access_key_id "
                    "and credentials.secret_access_key")
        return ("check credentials.access_key_id and credentials.secret_access_key (both are needed; "
                "session_token too for temporary credentials)")

    def _probe(self) -> None:
        client = self.client(attempts=1, connect_timeout=5, read_timeout=20)
        client.list_objects_v2(Bucket=self._bucket, MaxKeys=1)

    def _where(self) -> str:
        endpoint = self.definition.get("endpoint_url") or "AWS"
        return f"bucket {self._bucket!r} at {endpoint}"
