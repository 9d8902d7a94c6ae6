"""The workspace folder: its layout, creation, the index of known workspaces, and discovery.

A workspace is one folder holding everything of it (ARCHITECTURE.md, "State")::

    <workspace>/
      workspace.json          name, id, created
      server.json             url, pid, token of the running server (absent when stopped)
      openaml.db              metadata (SQLite, WAL) unless a PostgreSQL URL is configured
      secret.key              key of the secrets stored encrypted in openaml.db (0600; back it up)
      mlflow.db               MLflow tracking + registry store
      mlartifacts/            MLflow artifact root (served through /mlflow)
      datastores/workspaceblobstore/   the default datastore
      envs/<hash>/            cached virtualenvs with their build.log
      code/<hash>/            code snapshots
      jobs/<name>/            runner state, user_logs/, working directory
      logs/server.log

Clients find a workspace in this order (issue 2): explicit argument (folder or http URL),
``$OPENAML_WORKSPACE``, ``.openaml/config.json`` found upward from the current folder, else the
user's default local workspace ``$OPENAML_HOME/workspaces/default``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openaml._settings import openaml_home
from openaml.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "WorkspaceLayout",
    "create_workspace",
    "list_workspaces",
    "get_workspace_path",
    "delete_workspace",
    "discover",
    "WorkspaceTarget",
    "read_server_info",
    "atomic_write_json",
    "make_private",
    "private_tree",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{1,32}$")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically; the file is owner-only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def make_private(root: Path) -> None:
    """Make the workspace readable by its owner only: the process umask 0o077 (so what the server
    and its jobs create is 0600/0700) and every file and folder that exists 0600/0700 (group and
    others lose all access; the owner's execute bits are kept).

    The workspace holds secrets (keys, tokens, the database), data and models; nothing of it is
    for other users of the machine. Symbolic links are left alone (their targets are not ours).
    """
    os.umask(0o077)
    private_tree(root)


def private_tree(root: Path) -> None:
    """Remove group and other permissions from ``root`` and everything under it (links left alone)."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            p = os.path.join(folder, name)
            try:
                st = os.lstat(p)
                if not _is_link(st.st_mode) and st.st_mode & 0o077:
                    os.chmod(p, st.st_mode & 0o700)
            except OSError:
                continue
    try:
        os.chmod(root, os.stat(root).st_mode & 0o700)
    except OSError:
        pass


def _is_link(mode: int) -> bool:
    import stat

    return stat.S_ISLNK(mode)


@dataclass(frozen=True)
class WorkspaceLayout:
    root: Path

    @property
    def info_file(self) -> Path:
        return self.root / "workspace.json"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def metadata_db(self) -> Path:
        return self.root / "openaml.db"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def database_file(self) -> Path:
        """``database.json``: the metadata (and MLflow) database URLs of a workspace created with
        ``--database-url``; owner-only, since the URLs may carry a password."""
        return self.root / "database.json"

    def database_settings(self) -> dict[str, str]:
        """``{"database_url", "tracking_url"}`` as ``workspace create`` recorded them (only the keys
        given); ``{}`` for the embedded SQLite default."""
        try:
            data = json.loads(self.database_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{self.database_file} cannot be read ({exc}); it holds the workspace's "
                                  "database URL: restore it, or give --database-url to the server") from None
        return {k: str(v) for k, v in data.items() if k in ("database_url", "tracking_url") and v}

    @property
    def mlartifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def datastores(self) -> Path:
        return self.root / "datastores"

    @property
    def default_datastore(self) -> Path:
        return self.datastores / "workspaceblobstore"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def job_dir(self, name: str) -> Path:
        return self.jobs / name

    def ensure(self) -> None:
        for p in (self.mlartifacts, self.default_datastore, self.envs, self.code, self.jobs, self.logs, self.uploads):
            p.mkdir(parents=True, exist_ok=True)

    def info(self) -> dict[str, Any]:
        if not self.info_file.is_file():
            raise NotFoundError(f"{self.root} is not an openaml workspace (no workspace.json); "
                                f"create one with: openaml workspace create --name NAME --path {self.root}")
        return json.loads(self.info_file.read_text(encoding="utf-8"))


def _index_file(home: Path) -> Path:
    return home / "workspaces.json"


def _read_index(home: Path) -> dict[str, str]:
    f = _index_file(home)
    if f.is_file():
        try:
            return dict(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}
    return {}


def create_workspace(name: str, path: str | Path | None = None, *, description: str | None = None,
                     home: Path | None = None, exist_ok: bool = False,
                     workspace_id: str | None = None) -> WorkspaceLayout:
    """Create a workspace folder and record it in ``$OPENAML_HOME/workspaces.json``.

    Raises:
        ValidationError: the name is not 2-33 letters, digits, '-' or '_'.
        ConflictError: a workspace with that name exists (unless ``exist_ok``).
    """
    if not _NAME_RE.match(name):
        raise ValidationError(f"workspace name {name!r} is invalid: use 2-33 letters, digits, '-' or '_', "
                              "starting with a letter or digit", details={"field": "name", "value": name})
    home = home or openaml_home()
    index = _read_index(home)
    root = Path(path).expanduser().resolve() if path else home / "workspaces" / name
    if root.is_relative_to(home / "workspaces"):  # $OPENAML_HOME and its workspaces/ are created
        for folder in (home, home / "workspaces"):  # owner-only (0700), as the workspace
            if not folder.exists():
                folder.mkdir(parents=True, mode=0o700)
                folder.chmod(0o700)
    if name in index and Path(index[name]) != root:
        raise ConflictError(f"workspace {name!r} already exists at {index[name]}")
    layout = WorkspaceLayout(root)
    if root.exists() and not root.is_dir():
        raise ValidationError(f"--path {root} is a file; a workspace is a folder: give a new or empty folder",
                              details={"field": "path", "value": str(root)})
    if layout.info_file.is_file():
        existing = layout.info()
        if existing.get("name") != name:
            raise ConflictError(f"{root} already holds workspace {existing.get('name')!r}")
        if not exist_ok:
            raise ConflictError(f"workspace {name!r} already exists at {root}")
    else:
        if root.exists() and any(root.iterdir()):
            raise ConflictError(f"{root} exists and is not empty; choose another --path")
        layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        layout.root.chmod(0o700)
        atomic_write_json(layout.info_file, {
            "name": name,
            "id": workspace_id or uuid.uuid4().hex,
            "description": description,
            "created": datetime.now(UTC).isoformat(),
            "format": 1,
        })
    layout.ensure()
    home.mkdir(parents=True, exist_ok=True)
    index[name] = str(root)
    atomic_write_json(_index_file(home), index)
    return layout


def create_workspace_on_database(name: str, path: str | Path | None, database_url: str, *,
                                 tracking_url: str | None = None, secret_key_file: Path | None = None,
                                 description: str | None = None, home: Path | None = None) -> WorkspaceLayout:
    """A workspace folder whose metadata (and, by default, MLflow's runs and registry) live in the
    database at ``database_url`` (PostgreSQL), recorded in the folder's ``database.json``.

    A new database gets this workspace (the schema is created by the migrations). A database that
    already holds a workspace is *joined*: the folder takes that workspace's id, and
    ``secret_key_file`` (that workspace's ``secret.key``) is copied in, so that another host serves
    the same workspace (docs/guide/workspaces.md, "Several servers"). The database is checked before
    the folder is written: on any error nothing is created.

    Raises:
        ValidationError: the database cannot be reached or migrated (the driver's message), or a
            joined workspace without ``secret_key_file``.
        ConflictError: the database holds a workspace of another name; a folder or name in use.
    """
    from openaml.store import MetadataStore, SecretBox, claim_workspace, redact_url, workspace_of

    shown = redact_url(database_url)
    if not database_url.startswith("postgresql"):
        raise ValidationError(f"--database-url {shown}: only PostgreSQL URLs are supported "
                              "(postgresql+psycopg://user:password@host:5432/db); the embedded default needs none",
                              details={"field": "database_url"})
    try:
        store = MetadataStore(database_url).start()
    except Exception as exc:  # noqa: BLE001 - any driver error, said with the URL
        raise ValidationError(f"--database-url {shown}: cannot open the database: {str(exc).splitlines()[0]}",
                              details={"field": "database_url"}) from None
    try:
        held = workspace_of(store)
        if held is not None and held["name"] != name:
            raise ConflictError(f"the database {shown} holds workspace {held['name']!r}; create its folder with "
                                f"--name {held['name']} (one database holds one workspace)",
                                details={"field": "name", "value": name})
        if held is not None and secret_key_file is None:
            raise ValidationError(f"the database {shown} holds workspace {name!r} already: give --secret-key-file "
                                  "<a folder of it>/secret.key, the key its stored secrets are sealed with",
                                  details={"field": "secret_key_file"})
        key = secret_key_file.read_bytes() if secret_key_file is not None else None
        layout = create_workspace(name, path, description=description, home=home,
                                  workspace_id=held["id"] if held else None)
        try:
            if key is not None:
                fd = os.open(layout.root / "secret.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key)
            box = SecretBox(layout.root / "secret.key")
            claim_workspace(store, layout.info(), box, where=shown)
            atomic_write_json(layout.database_file, {"database_url": database_url,
                                                     **({"tracking_url": tracking_url} if tracking_url else {})})
        except BaseException:
            delete_workspace(name, home=home)
            raise
        return layout
    finally:
        store.close()


def list_workspaces(home: Path | None = None) -> list[dict[str, Any]]:
    home = home or openaml_home()
    out = []
    for name, p in sorted(_read_index(home).items()):
        layout = WorkspaceLayout(Path(p))
        out.append({"name": name, "path": p, "exists": layout.info_file.is_file(),
                    "server": read_server_info(layout)})
    return out


def get_workspace_path(name: str, home: Path | None = None) -> Path:
    home = home or openaml_home()
    index = _read_index(home)
    if name not in index:
        known = ", ".join(sorted(index)) or "none"
        raise NotFoundError(f"workspace {name!r} not found; known workspaces: {known}")
    return Path(index[name])


def delete_workspace(name: str, home: Path | None = None, *, delete_files: bool = True) -> Path:
    """Forget a workspace and (by default) delete its folder. Its server must be stopped first."""
    home = home or openaml_home()
    root = get_workspace_path(name, home)
    layout = WorkspaceLayout(root)
    info = read_server_info(layout)
    if info and _pid_alive(int(info.get("pid", 0))):
        raise ConflictError(f"workspace {name!r} has a running server (pid {info['pid']}); "
                            f"stop it first: openaml server stop --workspace {root}")
    if delete_files and layout.info_file.is_file():
        shutil.rmtree(root, ignore_errors=True)
    index = _read_index(home)
    index.pop(name, None)
    atomic_write_json(_index_file(home), index)
    return root


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, its parent has not waited for it yet) answers signal 0 but runs nothing
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[1].split()[:1] == [b"Z"]:
                return False
    except (OSError, IndexError):
        pass
    return True


def read_server_info(layout: WorkspaceLayout) -> dict[str, Any] | None:
    f = layout.server_file
    if not f.is_file():
        return None
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _pid_alive(int(info.get("pid", 0))):
        return None
    return info


def server_lock_holder(layout: WorkspaceLayout) -> dict[str, Any] | None:
    """What the process holding the workspace's ``server.lock`` wrote into it (``{"pid",
    "pid_started"}``; ``{}`` while it has not written it yet), or None when no process holds it.

    A server takes the lock first thing, before its database and its ``server.json``: a held lock
    is a server running or still starting (:func:`openaml.server._serve.serve`)."""
    try:
        f = open(layout.root / "server.lock", encoding="utf-8")
    except OSError:
        return None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held
        else:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return None
        try:
            holder = json.loads(f.read() or "{}")
        except ValueError:
            holder = {}
    return holder if isinstance(holder, dict) else {}


@dataclass(frozen=True)
class WorkspaceTarget:
    """Where a client should talk to: a URL, or a local folder whose server may need starting."""

    url: str | None = None
    path: Path | None = None
    token: str | None = None
    source: str = "explicit"


def _find_config(start: Path) -> Path | None:
    cur = start.resolve()
    for folder in (cur, *cur.parents):
        for candidate in (folder / ".openaml" / "config.json", folder / "config.json"):
            if candidate.is_file() and candidate.parent.name == ".openaml":
                return candidate
    return None


def target_from_value(value: str, source: str, token: str | None = None) -> WorkspaceTarget:
    if value.startswith(("http://", "https://")):
        return WorkspaceTarget(url=value.rstrip("/"), token=token, source=source)
    p = Path(value).expanduser()
    bare = not any(sep in value for sep in ("/", os.sep)) and not value.startswith(".")
    if bare and not (p / "workspace.json").is_file():
        # a bare name: look it up in the index; a folder of that name in the current directory
        # wins only when it is a workspace (an unrelated folder must not shadow a registered name)
        try:
            p = get_workspace_path(value)
        except NotFoundError:
            if not p.exists():
                raise
    elif bare:  # a workspace folder here, and maybe a registered workspace of that name elsewhere
        try:
            registered = get_workspace_path(value).resolve()
        except NotFoundError:
            registered = None
        if registered is not None and registered != p.resolve():
            raise ValidationError(
                f"workspace {value!r} ({source}) is ambiguous: the folder {p.resolve()} here is a workspace, and "
                f"so is the registered workspace {value!r} at {registered}; give ./{value} for the folder or "
                f"{registered} for the registered one")
    return WorkspaceTarget(path=p.resolve(), token=token, source=source)


def discover(explicit: str | None = None, *, cwd: Path | None = None,
             environ: dict[str, str] | None = None, config_path: str | Path | None = None) -> WorkspaceTarget:
    """Find the workspace a client should use (order documented in the module docstring)."""
    env = os.environ if environ is None else environ
    token = env.get("OPENAML_TOKEN")
    if explicit:
        return target_from_value(explicit, "explicit", token)
    if env.get("OPENAML_WORKSPACE"):
        return target_from_value(env["OPENAML_WORKSPACE"], "OPENAML_WORKSPACE", token)
    cfg = Path(config_path) if config_path else _find_config(cwd or Path.cwd())
    if cfg is not None:
        if not cfg.is_file():
            raise NotFoundError(f"config file {cfg} not found")
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValidationError(f"{cfg}: invalid JSON: {exc}") from None
        value = data.get("workspace") or data.get("url") or data.get("path") or data.get("workspace_name")
        if not value:
            raise ValidationError(f"{cfg}: expected a 'workspace' key (a folder path, a name or an http URL)")
        if isinstance(value, str) and not value.startswith("http") and not os.path.isabs(value) and (
            "/" in value or value.startswith(".")
        ):
            value = str((cfg.parent.parent / value).resolve())
        # OPENAML_TOKEN is not sent where a found config file points: a config planted in a parent
        # folder would otherwise collect it. Its URL's token comes from the credentials file
        # ($OPENAML_HOME/credentials.json, see openaml._credentials) or the config itself.
        return target_from_value(str(value), str(cfg), data.get("token") or None)
    home = openaml_home(env)
    root = home / "workspaces" / "default"
    if not (root / "workspace.json").is_file():
        create_workspace("default", root, home=home, exist_ok=True)
    return WorkspaceTarget(path=root, token=token, source="default")
