"""URI parsing (spec 1.2) and path-escape protection."""

from __future__ import annotations

import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from openaml.errors import PathEscapeError, ValidationError

__all__ = ["DatastoreUri", "JobOutputUri", "parse_datastore_uri", "parse_job_output_uri", "safe_join",
           "safe_extract_tar", "relative_parts", "local_url_paths"]

_SHORT = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/?(?P<path>.*)$")
_LONG = re.compile(
    r"^azureml://subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/Microsoft\.MachineLearningServices/)?"
    r"workspaces/[^/]+/datastores/(?P<ds>[^/]+)/paths/?(?P<path>.*)$"
)
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")
#: fsspec protocols that are this machine's files (compared lower-cased)
LOCAL_PROTOCOLS = frozenset({"file", "local"})


def local_url_paths(url: str) -> list[str]:
    """The local paths an fsspec URL reaches, or [] if none: ``url`` is split into its chained
    members (``simplecache::FILE:///etc`` -> ``simplecache``, ``FILE:///etc``); a member whose
    protocol (any case) is ``file``/``local``, or a last member without a protocol (a plain path,
    ``C:\\x`` included), is local. Wrapper members (``simplecache``, ``dir``, ...) say nothing.

    Returns the local members with their protocol removed (``/etc``), for the allowed-roots check.
    """
    members = [m.strip() for m in str(url).split("::")]
    found: list[str] = []
    for i, member in enumerate(members):
        m = _SCHEME.match(member)
        scheme = m.group("scheme").lower() if m else ""
        if scheme in LOCAL_PROTOCOLS:
            rest = member[m.end():] if m else member
            found.append("/" + rest.lstrip("/") if rest.startswith("//") or rest.startswith("/") else rest)
        elif (not m or len(scheme) == 1) and (i == len(members) - 1 or "/" in member or "\\" in member):
            found.append(member)  # a plain path (a drive letter is no protocol), or a wrapper given a path
    return found


_JOB = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/?(?P<path>.*))?$")


@dataclass(frozen=True)
class DatastoreUri:
    datastore: str
    path: str  # relative, posix, may be "" (the datastore root)

    def __str__(self) -> str:
        return f"azureml://datastores/{self.datastore}/paths/{self.path}"


@dataclass(frozen=True)
class JobOutputUri:
    job: str
    output: str  # "artifacts"/"default" for the default artifact output
    path: str


def parse_datastore_uri(uri: str) -> DatastoreUri | None:
    m = _SHORT.match(uri) or _LONG.match(uri)
    if not m:
        return None
    return DatastoreUri(m.group("ds"), m.group("path") or "")


def parse_job_output_uri(uri: str) -> JobOutputUri | None:
    m = _JOB.match(uri)
    if not m:
        return None
    return JobOutputUri(m.group("job"), m.group("output"), m.group("path") or "")


def relative_parts(rel: str, *, what: str = "path") -> list[str]:
    """The components of a user-given relative path, refusing what could leave its folder.

    Refused: NUL characters, absolute paths (``/x``, ``C:...``) and ``..`` components. Backslashes
    count as separators; empty and ``.`` components are dropped (``""`` is the folder itself).

    Raises:
        PathEscapeError: naming ``what`` and the value.
    """
    rel_s = str(rel).replace("\\", "/")
    if "\0" in rel_s:
        raise PathEscapeError(f"{what} {rel!r} contains a NUL character", details={"value": rel})
    if rel_s.startswith("/") or re.match(r"^[A-Za-z]:", rel_s):
        raise PathEscapeError(f"{what} {rel!r} is absolute; give a path relative to the folder",
                              details={"value": rel})
    parts = [p for p in PurePosixPath(rel_s).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathEscapeError(f"{what} {rel!r} contains '..'; paths must stay inside their folder",
                              details={"value": rel})
    return parts


def safe_join(root: str | os.PathLike[str], rel: str, *, what: str = "path") -> Path:
    """Join a user-given relative path under ``root`` and refuse anything that escapes it.

    Refused: NUL characters, absolute paths, ``..`` components, and symlinks (anywhere on the way)
    that point outside ``root``.

    Raises:
        PathEscapeError: naming the path and the folder it tried to leave.
    """
    root_p = Path(root).resolve()
    parts = relative_parts(rel, what=what)
    target = root_p.joinpath(*parts) if parts else root_p
    resolved = target.resolve()
    if resolved != root_p and root_p not in resolved.parents:
        raise PathEscapeError(f"{what} {rel!r} leaves its folder through a symlink", details={"value": rel})
    return target


def safe_extract_tar(fileobj: IO[bytes], dest: Path) -> int:
    """Extract a tar stream into ``dest``, refusing links and members that leave it.

    Returns the number of files extracted.

    Raises:
        PathEscapeError: a member is absolute, has ``..``, or is a symlink/hardlink/device.
        ValidationError: the stream is not a tar archive.
    """
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                if "\0" in member.name:
                    raise ValidationError(f"archive member {member.name!r} has a NUL character in its name")
                if member.issym() or member.islnk():
                    raise PathEscapeError(f"archive member {member.name!r} is a link; links are not accepted")
                if not (member.isfile() or member.isdir()):
                    raise PathEscapeError(f"archive member {member.name!r} is not a regular file or folder")
                target = safe_join(dest, member.name, what="archive member")
                try:
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    assert src is not None
                    with open(target, "wb") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                except (FileExistsError, NotADirectoryError, IsADirectoryError):
                    # the message names the member only: server paths stay private
                    raise ValidationError(f"archive member {member.name!r} clashes with a file or folder of "
                                          "the same name earlier in the archive") from None
                except ValueError as exc:
                    raise ValidationError(f"archive member {member.name!r} has an invalid name ({exc})") from None
                # owner-only, as everything in a workspace (issue 10: nothing readable by other users)
                os.chmod(target, 0o700 if member.mode & 0o111 else 0o600)
                count += 1
    except tarfile.TarError as exc:
        raise ValidationError(f"upload is not a valid tar archive: {exc}") from None
    return count
