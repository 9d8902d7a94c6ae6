"""The datastore port's contract, run on every registered backend (issue 11 item 3).

Each backend in ``openaml.datastores.BACKENDS`` needs a factory in ``FACTORIES`` below (the test
``test_every_registered_backend_has_a_factory`` fails otherwise), so S3 (a moto server) and Azure
Blob (Azurite) run the same assertions as the folder backend, with no backend-specific skips (the
servers come from ``tests/object_stores.py``: a test skips when its server cannot be started,
and fails under CI=true). One more parameter, ``memory-test``
(fsspec's in-memory filesystem, not a registered type), holds the port's generic code to the same
contract on a filesystem without local paths.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openaml.datastores import BACKENDS, DatastorePort, open_datastore, supported_types, tar_stream
from openaml.errors import NotFoundError, PathEscapeError, UnsupportedError, ValidationError


def _local(request: pytest.FixtureRequest, tmp: Path) -> DatastorePort:
    folder = tmp / "local-datastore"
    folder.mkdir()
    return open_datastore({"name": "contract", "type": "local", "path": str(folder)})


class _MemoryDatastore(DatastorePort):
    """Not a registered type: fsspec's in-memory filesystem under the port's generic code, so the
    base class is held to the contract on a filesystem with no local path (as S3's will be)."""

    type = "memory-test"

    def __init__(self, name: str, definition: dict[str, object], **_: object) -> None:
        from fsspec.implementations.memory import MemoryFileSystem

        super().__init__(name, definition)
        self._fs = MemoryFileSystem()
        self._root = f"/{definition['prefix']}"
        self._fs.makedirs(self._root, exist_ok=True)

    @property
    def fs(self):  # type: ignore[no-untyped-def]
        return self._fs

    @property
    def root(self) -> str:
        return self._root


def _s3(request: pytest.FixtureRequest, tmp: Path) -> DatastorePort:
    return open_datastore(request.getfixturevalue("moto_s3").definition("contract"))


def _azure_blob(request: pytest.FixtureRequest, tmp: Path) -> DatastorePort:
    return open_datastore(request.getfixturevalue("azurite").definition("contract"))


def _memory(tmp: Path) -> DatastorePort:
    return _MemoryDatastore("contract", {"prefix": f"contract-{tmp.name}"})


#: datastore type -> a function making an empty datastore of that type (a temporary folder, a new
#: bucket of the session's moto server, a new container of the session's Azurite)
FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], DatastorePort]] = {
    "local": _local, "s3": _s3, "azure_blob": _azure_blob}


@pytest.fixture(params=[*sorted(BACKENDS), "memory-test"])
def port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatastorePort]:
    if request.param == "memory-test":
        made = _memory(tmp_path)
        yield made
        made.fs.rm(made.root, recursive=True)
        return
    yield FACTORIES[request.param](request, tmp_path)


def test_every_registered_backend_has_a_factory() -> None:
    assert sorted(FACTORIES) == supported_types()


def _write(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_put_get_file_round_trip(port: DatastorePort, tmp_path: Path) -> None:
    src = _write(tmp_path / "in" / "a.bin", os.urandom(3000) + b"\x00end")
    assert port.put(src, "dir/a.bin") == 1
    assert port.exists("dir/a.bin") and port.exists("dir") and port.isfile("dir/a.bin") and port.isdir("dir")
    assert port.info("dir/a.bin") == {"name": "dir/a.bin", "type": "file", "size": 3004}
    assert port.info("dir")["type"] == "directory"
    assert port.get("dir/a.bin", tmp_path / "out" / "b.bin") == 1
    assert (tmp_path / "out" / "b.bin").read_bytes() == src.read_bytes()


def test_put_get_folder_round_trip_and_ls(port: DatastorePort, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    files = {"a.txt": b"a", "sub/b.txt": b"bb", "sub/deeper/c.txt": b"ccc", "space name.txt": b"s"}
    for rel, data in files.items():
        _write(src / rel, data)
    assert port.put(src, "data/tree") == len(files)
    assert [e["name"] for e in port.ls("data/tree")] == ["data/tree/a.txt", "data/tree/space name.txt",
                                                          "data/tree/sub"]
    assert sorted(port.walk("data/tree")) == sorted((rel, len(d)) for rel, d in files.items())
    assert port.get("data/tree", tmp_path / "back") == len(files)
    for rel, data in files.items():
        assert (tmp_path / "back" / rel).read_bytes() == data
    # a second put merges into the folder
    _write(tmp_path / "more" / "d.txt", b"d")
    port.put(tmp_path / "more", "data/tree")
    assert port.exists("data/tree/d.txt") and port.exists("data/tree/a.txt")
    assert [e["name"] for e in port.ls("")] == ["data"]


def test_open_read_write_and_text(port: DatastorePort) -> None:
    with port.open("x/y/z.txt", "wb") as fh:
        fh.write(b"hello")
    with port.open("x/y/z.txt", "rb") as fh:
        assert fh.read() == b"hello"
    with port.open("t.txt", "w") as fh:
        fh.write("héllo\n")
    with port.open("t.txt", "r") as fh:
        assert fh.read() == "héllo\n"


def test_rm(port: DatastorePort, tmp_path: Path) -> None:
    _write(tmp_path / "f" / "a.txt", b"a")
    _write(tmp_path / "f" / "s" / "b.txt", b"b")
    port.put(tmp_path / "f", "f")
    port.rm("f/a.txt")
    assert not port.exists("f/a.txt") and port.exists("f/s/b.txt")
    with pytest.raises(ValidationError, match="recursive=True"):
        port.rm("f")
    port.rm("f", recursive=True)
    assert not port.exists("f")
    with pytest.raises(ValidationError, match="root"):
        port.rm("", recursive=True)


def test_uri_and_url(port: DatastorePort) -> None:
    assert port.normalize("./a//b/") == "a/b" and port.normalize("") == ""
    assert port.uri("a/b.csv") == "azureml://datastores/contract/paths/a/b.csv"
    url = port.url("a/b.csv")
    assert "://" in url and url.endswith("a/b.csv")
    assert port.spec()["name"] == "contract" and port.spec()["type"] == port.type
    # the definition reopens the same datastore (how a runner gets it)
    with port.open("same.txt", "wb") as fh:
        fh.write(b"1")
    if port.type in BACKENDS:
        secrets = {"credentials": port.credentials} if port.credentials else {}
        assert open_datastore({**port.spec(), **secrets}).exists("same.txt")


def test_spec_and_repr_hold_no_secret(port: DatastorePort) -> None:
    spec = port.spec()
    assert "credentials" not in spec
    for secret in port.credentials.values():
        assert str(secret) not in repr(spec) and str(secret) not in repr(port)


def test_local_path_is_given_only_by_local_backends(port: DatastorePort) -> None:
    with port.open("lp.txt", "wb") as fh:
        fh.write(b"x")
    if port.has_local_path:
        assert port.local_path("lp.txt").read_bytes() == b"x"
    else:
        with pytest.raises(UnsupportedError, match="no local path"):
            port.local_path("lp.txt")


@pytest.mark.parametrize("bad", ["../outside", "a/../../outside", "/etc/passwd", "a\0b", "C:/Windows"])
def test_escape_attempts_are_refused_naming_the_uri(port: DatastorePort, tmp_path: Path, bad: str) -> None:
    src = _write(tmp_path / "x.txt", b"x")
    calls: list[Callable[[], object]] = [
        lambda: port.exists(bad), lambda: port.info(bad), lambda: port.ls(bad), lambda: port.open(bad, "wb"),
        lambda: port.get(bad, tmp_path / "o"), lambda: port.put(src, bad), lambda: port.rm(bad, recursive=True),
        lambda: port.url(bad), lambda: list(port.walk(bad)), lambda: port.normalize(bad),
    ]
    for call in calls:
        with pytest.raises(PathEscapeError, match="azureml://datastores/contract/paths/"):
            call()
    assert not (tmp_path / "o").exists()


def test_missing_paths_raise_not_found_naming_the_uri(port: DatastorePort, tmp_path: Path) -> None:
    uri = "azureml://datastores/contract/paths/no/such"
    for call in (lambda: port.info("no/such"), lambda: port.ls("no/such"), lambda: port.open("no/such", "rb"),
                 lambda: port.get("no/such", tmp_path / "o"), lambda: port.rm("no/such"),
                 lambda: list(port.walk("no/such")), lambda: tar_stream(port, "no/such")):
        with pytest.raises(NotFoundError, match=uri):
            call()
    assert not port.exists("no/such")
    with pytest.raises(NotFoundError):
        port.put(tmp_path / "missing-local", "x")


def test_folder_and_file_confusions_are_refused(port: DatastorePort, tmp_path: Path) -> None:
    port.put(_write(tmp_path / "a.txt", b"a"), "d/a.txt")
    with pytest.raises(ValidationError, match="is a file"):
        port.ls("d/a.txt")
    with pytest.raises(ValidationError, match="is a folder"):
        port.open("d", "rb")


def test_large_file_streams_in_bounded_memory(port: DatastorePort, tmp_path: Path) -> None:
    size = 48 << 20
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(src, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(block)
            digest.update(block)
    # Python allocations beyond what the backend keeps (an in-memory backend keeps the file itself)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        port.put(src, "big/big.bin")
        kept, peak = tracemalloc.get_traced_memory()
        put_extra = peak - kept
        tracemalloc.reset_peak()
        port.get("big/big.bin", tmp_path / "back.bin")
        tarred = hashlib.sha256()
        total = 0
        for chunk in tar_stream(port, "big"):
            tarred.update(chunk)
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        read_extra = peak - kept
    finally:
        tracemalloc.stop()
    for what, extra in (("put", put_extra), ("get and tar", read_extra)):
        # a few requests' worth (a 16 MiB single put or get for Azure Blob, 2 x 8 MiB parts for S3),
        # never the whole file
        assert extra < 24 << 20, f"{what} allocated {extra / 2**20:.1f} MiB for a {size >> 20} MiB file"
    assert kept - before < size // 2 or not port.has_local_path  # a local backend keeps nothing in memory
    back = hashlib.sha256()
    with open(tmp_path / "back.bin", "rb") as fh:
        while chunk := fh.read(1 << 20):
            back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()
    assert total > size and total % 10240 == 0


def test_tar_stream_is_a_valid_archive(port: DatastorePort, tmp_path: Path) -> None:
    import io
    import tarfile

    port.put(_write(tmp_path / "t" / ("long-" * 30 + ".txt"), b"L"), "t/" + "long-" * 30 + ".txt")
    port.put(_write(tmp_path / "t2" / "s" / "b.txt", b"bb"), "t/s/b.txt")
    data = b"".join(tar_stream(port, "t", prefix="pre"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert got == {"pre/" + "long-" * 30 + ".txt": b"L", "pre/s/b.txt": b"bb"}
    data = b"".join(tar_stream(port, "t/s/b.txt"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["b.txt"]


def test_unsupported_type_names_the_datastore_its_type_and_the_supported_ones() -> None:
    with pytest.raises(UnsupportedError) as info:
        open_datastore({"name": "blobby", "type": "azure_file", "account_name": "a"})
    msg = info.value.message
    assert "'blobby'" in msg and "azure_file" in msg and ", ".join(supported_types()) in msg


def test_read_range_reads_the_file_as_it_is_now(port: DatastorePort) -> None:
    """``read_range``: one request for a part of a file, of the copy there now (a standby server reads a
    log its leader replaces as it grows)."""
    with port.open("logs/l.txt", "wb") as fh:
        fh.write(b"0123456789")
    assert port.read_range("logs/l.txt", 2, 3) == b"234"
    assert port.read_range("logs/l.txt", 8, 100) == b"89"
    assert port.read_range("logs/l.txt", 10, 5) == b""
    with port.open("logs/l.txt", "wb") as fh:  # replaced by a longer copy
        fh.write(b"0123456789abcdef")
    assert port.read_range("logs/l.txt", 8, 100) == b"89abcdef"
    with pytest.raises(NotFoundError, match="azureml://datastores/contract/paths/no/such"):
        port.read_range("no/such", 0, 10)
