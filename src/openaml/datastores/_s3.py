"""The ``type: s3`` datastore (an openaml extension): a bucket of an S3 API, through fsspec's s3fs.

Definition: ``bucket`` (required), ``endpoint_url`` (an S3-compatible server: MinIO, Ceph, moto;
AWS when absent), ``region``; ``credentials`` ``{access_key_id, secret_access_key[, session_token]}``
or none for boto's default chain (environment, ``~/.aws``, instance role). The credentials are
kept on the port and never part of :meth:`~openaml.datastores.DatastorePort.spec`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from openaml.datastores._remote import BLOCK, RemoteDatastore
from openaml.errors import ValidationError

__all__ = ["S3DatastorePort"]


class S3DatastorePort(RemoteDatastore):
    """A bucket of an S3 API (``s3fs.S3FileSystem``); paths are keys under the bucket.

    Raises (constructor):
        ValidationError: no ``bucket``, or one with a ``/``.
    """

    type = "s3"
    _put_kwargs = {"chunksize": BLOCK, "max_concurrency": 1}
    _get_kwargs = {"chunksize": BLOCK, "max_concurrency": 1}
    _read_kwargs = {"block_size": 2 << 20, "cache_type": "readahead"}

    def __init__(self, name: str, definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> None:
        super().__init__(name, definition, base=base)
        bucket = str(self.definition.get("bucket") or "")
        if not bucket or "/" in bucket.strip("/"):
            raise ValidationError(f"s3 datastore {name!r} needs 'bucket': a bucket name without '/' (got {bucket!r})",
                                  details={"field": "bucket", "value": bucket})
        self._bucket = bucket.strip("/")
        self._fs: Any = None

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

    def _probe(self) -> None:
        import boto3
        from botocore.config import Config

        creds = self.credentials
        client = boto3.client(
            "s3", endpoint_url=self.definition.get("endpoint_url") or None,
            region_name=self.definition.get("region") or None, aws_access_key_id=creds.get("access_key_id"),
            aws_secret_access_key=creds.get("secret_access_key"), aws_session_token=creds.get("session_token"),
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20))
        client.list_objects_v2(Bucket=self._bucket, MaxKeys=1)

    def _where(self) -> str:
        endpoint = self.definition.get("endpoint_url") or "AWS"
        return f"bucket {self._bucket!r} at {endpoint}"
