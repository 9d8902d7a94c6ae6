"""The ``type: azure_blob`` datastore: a container of Azure Blob Storage (or Azurite), through adlfs.

Definition as Azure ML's ``AzureBlobDatastore``: ``account_name``, ``container_name``, ``endpoint``
(the storage suffix, ``core.windows.net`` by default) and ``protocol`` (``https``); the account's
blob URL is ``<protocol>://<account_name>.blob.<endpoint>``. An ``endpoint`` that is itself a URL
(``http://127.0.0.1:10000/devstoreaccount1``: Azurite, a private endpoint) is used as the account's
blob URL as it is (an openaml extension). Credentials: ``{account_key}``, ``{sas_token}``, or none
(identity-based: azure-identity's default chain where installed, else anonymous read).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openaml.datastores._remote import PARALLEL, RemoteDatastore
from openaml.errors import ValidationError

__all__ = ["AzureBlobDatastorePort", "CLIENT", "PER_FILE"]

#: a blob up to this size is written and read in one request (larger: 4 MiB blocks and ranges);
#: azure-storage-blob's own defaults are 64 MiB (put) and 32 MiB (get), which cost that much memory
#: per file moved (bench/datastores.py: 3 MiB blocks made Azurite 2x slower than the raw client)
SINGLE = 16 << 20
#: azure-storage-blob client settings of folder transfers (bench/datastores.py's raw peer uses the
#: same): one request up to :data:`SINGLE`, else 4 MiB blocks; reads 8 MiB then 4 MiB ranges
CLIENT: dict[str, Any] = {"max_single_put_size": SINGLE, "max_block_size": 4 << 20,
                          "max_single_get_size": 8 << 20, "max_chunk_get_size": 4 << 20}
#: requests at a time within one file (``max_concurrency`` of ``upload_blob``/``download_blob``)
PER_FILE = 2


class AzureBlobDatastorePort(RemoteDatastore):
    """A blob container (``adlfs.AzureBlobFileSystem``); paths are blob names under the container.

    Raises (constructor):
        ValidationError: no ``account_name`` or ``container_name``.
    """

    type = "azure_blob"
    _put_kwargs = {"max_concurrency": PER_FILE}
    _get_kwargs = {"max_concurrency": PER_FILE}
    _read_kwargs = {"block_size": 2 << 20, "cache_type": "readahead"}

    def __init__(self, name: str, definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> None:
        super().__init__(name, definition, base=base)
        for field in ("account_name", "container_name"):
            if not self.definition.get(field):
                raise ValidationError(f"azure_blob datastore {name!r} needs {field!r}", details={"field": field})
        self._container = str(self.definition["container_name"]).strip("/")
        self._fs: Any = None

    @property
    def account_url(self) -> str:
        """``<protocol>://<account>.blob.<endpoint>``, or ``endpoint`` when it is a URL itself."""
        endpoint = str(self.definition.get("endpoint") or "core.windows.net")
        if "://" in endpoint:
            return endpoint.rstrip("/")
        protocol = str(self.definition.get("protocol") or "https")
        return f"{protocol}://{self.definition['account_name']}.blob.{endpoint}"

    def connection_string(self) -> str | None:
        """The account's connection string with its key or SAS; None for identity-based access."""
        creds = self.credentials
        protocol = self.account_url.split("://", 1)[0]
        parts = [f"BlobEndpoint={self.account_url}"]
        if creds.get("account_key"):
            parts = [f"DefaultEndpointsProtocol={protocol}", f"AccountName={self.definition['account_name']}",
                     f"AccountKey={creds['account_key']}", *parts]
        elif creds.get("sas_token"):
            parts.append(f"SharedAccessSignature={str(creds['sas_token']).lstrip('?')}")
        else:
            return None
        return ";".join(parts) + ";"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import adlfs

            conn = self.connection_string()
            kwargs: dict[str, Any] = {"blocksize": 4 << 20, "use_listings_cache": False, "skip_instance_cache": True}
            if conn is not None:
                kwargs["connection_string"] = conn
            else:
                kwargs.update(account_name=str(self.definition["account_name"]), anon=None)
            fs = adlfs.AzureBlobFileSystem(**kwargs)
            if conn is not None:  # the same client, with block sizes that bound memory (see _remote)
                from azure.storage.blob.aio import BlobServiceClient

                fs.service_client = BlobServiceClient.from_connection_string(
                    conn, **CLIENT, retry_total=1, retry_backoff_factor=0.5, connection_timeout=10)
            self._fs = fs
        return self._fs

    @property
    def root(self) -> str:
        return self._container

    # ------------------------------------------------------------------ folder transfers
    # With a key or SAS, files are written through azure-storage-blob's synchronous client, one thread
    # per file (PARALLEL at a time), PER_FILE requests a file, with CLIENT's sizes, as the raw client
    # is used (bench/datastores.py's peer: the same settings): adlfs runs every transfer on one
    # event-loop thread, which bench/datastores.py measured at 0.6x the raw client's writes. Reads go
    # through azure-storage-blob's asynchronous client (``download_blob().readinto``, CLIENT's ranges,
    # PER_FILE ranges of a file at a time, PARALLEL files at a time on one event loop): the synchronous
    # client's transport held about 9x each range in transient buffers (80 MiB for a 48 MiB blob, over
    # the contract's bound; the asynchronous one about 16 MiB), and adlfs's layers over the same
    # asynchronous client made reads 0.82-0.85x the raw client's. Identity-based access keeps adlfs
    # for both (its credential chain).
    def _container_client(self) -> Any:
        from azure.storage.blob import ContainerClient

        conn = self.connection_string()
        if conn is None:
            return None
        return ContainerClient.from_connection_string(
            conn, self._container, **CLIENT, retry_total=1, retry_backoff_factor=0.5, connection_timeout=10)

    def _blob_name(self, real: str) -> str:
        return real[len(self._container):].lstrip("/")

    def _put_files(self, pairs: list[tuple[str, str]]) -> None:
        client = self._container_client()
        if client is None:
            super()._put_files(pairs)
            return

        def one(pair: tuple[str, str]) -> None:
            with open(pair[0], "rb") as fh:
                client.upload_blob(self._blob_name(pair[1]), fh, overwrite=True, max_concurrency=PER_FILE)

        with client, ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(one, pairs))

    def _get_files(self, pairs: list[tuple[str, str]]) -> None:
        conn = self.connection_string()
        if conn is None:
            super()._get_files(pairs)
            return
        names = [(self._blob_name(real), local) for real, local in pairs]

        import asyncio

        async def read_all() -> None:
            from azure.storage.blob.aio import ContainerClient

            async with ContainerClient.from_connection_string(
                    conn, self._container, **CLIENT, retry_total=1, retry_backoff_factor=0.5,
                    connection_timeout=10) as client:
                slots = asyncio.Semaphore(PARALLEL)

                async def one(name: str, local: str) -> None:
                    async with slots:
                        downloader = await client.download_blob(name, max_concurrency=PER_FILE)
                        with open(local, "wb") as fh:
                            await downloader.readinto(fh)

                await asyncio.gather(*(one(n, local) for n, local in names))

        # a loop of its own, in a thread of its own: the caller may be running an event loop itself
        with ThreadPoolExecutor(1) as loop_thread:
            loop_thread.submit(asyncio.run, read_all()).result()

    def url(self, path: str = "") -> str:
        rel = self._real(path)[len(self._container):].lstrip("/")
        return f"{self.account_url}/{self._container}/{rel}"

    def endpoint_field(self) -> str:
        # a URL endpoint (Azurite, a private endpoint) is the address; else the account names the host
        return "endpoint" if "://" in str(self.definition.get("endpoint") or "") else "account_name"

    def _credentials_hint(self, given: list[str]) -> str:
        if "sas_token" in given and "account_key" not in given:
            return "check credentials.sas_token (as the portal generates it, with or without the leading '?')"
        if not given:
            return ("no account_key or sas_token was given, so azure-identity's default chain is used; give "
                    "credentials.account_key or credentials.sas_token")
        return "check the key (an account key is base64, as the portal shows it)"

    def _probe(self) -> None:
        from azure.storage.blob import ContainerClient

        conn = self.connection_string()
        quick: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 20}
        if conn is not None:
            client = ContainerClient.from_connection_string(conn, self._container, **quick)
        else:
            client = ContainerClient(self.account_url, self._container, **quick)
        with client:
            next(iter(client.list_blobs(results_per_page=1).by_page()), None)

    def _where(self) -> str:
        return f"container {self._container!r} of {self.account_url}"
