"""Studio pages of the workspace's other nouns: home, data assets (preview and column profile),
datastores (browse), environments, components, computes, models (lineage), schedules, online
endpoints (traffic, keys, Test tab). Each page reads the same services the REST routes call; every
action is a call to ``/api/v1`` from the page, so the API's role checks and cross-site guard apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from openaml.datastores._mltable import is_url
from openaml.datastores._paths import parse_datastore_uri, relative_parts
from openaml.errors import NotFoundError, OpenAMLError, PathEscapeError, ValidationError
from openaml.server.studio._common import bad_request, render, render_list, services, sort_key
from openaml.store import JobQuery

__all__ = ["router", "preview_table", "PREVIEW_ROWS", "PROFILE_ROWS"]

router = APIRouter(include_in_schema=False)
PREVIEW_ROWS = 20
PROFILE_ROWS = 10_000  # the column profile is computed on the first rows only (as Azure's data profile preview)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Workspace overview: counts by job status, recent jobs, the nouns with links."""
    ctx = request.app.state.ctx
    svc = services(request)
    recent, total = ctx.store.page_jobs(JobQuery(per_page=10))
    # top-level jobs, as the jobs list counts them (a pipeline's steps and a sweep's trials are its children)
    counts = {s: ctx.store.page_jobs(JobQuery(status=s, per_page=1))[1]
              for s in ("Queued", "Running", "Completed", "Failed", "Canceled")}
    nouns: dict[str, int | None] = {}
    for label, fn in (("Computes", lambda: svc["computes"].list()), ("Data assets", lambda: svc["data"].list()),
                      ("Environments", lambda: svc["environments"].list()),
                      ("Components", lambda: svc["components"].list()), ("Models", lambda: svc["models"].list()),
                      ("Online endpoints", lambda: svc["endpoints"].list_endpoints()),
                      ("Batch endpoints", lambda: svc["batch_endpoints"].list_endpoints()),
                      ("Schedules", lambda: svc["schedules"].list("All"))):
        try:
            nouns[label] = len(fn())
        except OpenAMLError:
            nouns[label] = None
    return render(request, "home.html", recent=recent, total=total, counts=counts, nouns=nouns)


def _missing(request: Request, what: str, back: str, label: str) -> HTMLResponse:
    return render(request, "404.html", status_code=404, what=what, back=back, back_label=label)


def _missing_version(request: Request, svc: Any, noun: str, path: str, name: str, version: str | None) -> HTMLResponse:
    """The 404 page of a version that is not there: "<noun> 'x' has no version 'v'" with a link to the
    asset's page (its versions) when the asset exists, else "There is no <noun> 'x'"."""
    if version:
        try:
            svc.get(name, version=None, label="latest")
        except (NotFoundError, ValidationError):
            pass
        else:
            return render(request, "404.html", status_code=404, message=f"{noun} {name!r} has no version {version!r}.",
                          back=f"/{path}/{quote(name, safe='')}", back_label=f"{noun} {name} (its versions)")
    return _missing(request, f"{noun} {name!r}", f"/{path}", f"all {noun}s")


# ---------------------------------------------------------------------------- data
def _inside(root: Path, path: Path, shown: str) -> Path:
    """``path`` resolved (links followed), refused when that leaves ``root`` (itself resolved)."""
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise PathEscapeError(f"{shown!r} is outside the asset's folder (a link or path leading out of it); "
                              "the preview reads only files inside the asset", details={"value": shown})
    return resolved


def _mltable_files(folder: Path, spec: dict[str, Any], resolve_uri: Any) -> list[Path]:
    """The files an MLTable's ``paths`` name, each confined: a local path must resolve inside the
    MLTable's folder (no ``..``, no absolute path, no link leading out), an ``azureml://datastores/``
    URI is resolved through the datastore's port (confined to that datastore) and read only inside
    the folder it names; any other URL is refused. Raises PathEscapeError naming the path."""
    root = folder.resolve()
    out: list[Path] = []
    for entry in spec.get("paths") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValidationError(f"MLTable paths entry {entry!r} is not one of file, folder, pattern")
        kind, value = next(iter(entry.items()))
        value = str(value)
        base, rel = root, value
        if is_url(value):
            if parse_datastore_uri(value) is None:
                raise PathEscapeError(f"MLTable path {value!r} is a URL the server does not read; the preview "
                                      "reads files inside the asset's folder or on a datastore",
                                      details={"value": value})
            base, rel = Path(resolve_uri(value)).resolve(), ""
        if kind == "pattern":
            parts = relative_parts(rel, what="MLTable pattern")
            hits = sorted(base.glob("/".join(parts))) if parts else []
        else:
            target = base.joinpath(*relative_parts(rel, what=f"MLTable {kind} path"))
            hits = sorted(p for p in target.rglob("*") if p.is_file()) if kind == "folder" else [target]
        for p in hits:
            shown = value if p == base or base not in p.parents else f"{value} ({p.relative_to(base).as_posix()})"
            resolved = _inside(base, p, shown)
            if resolved.is_file():
                out.append(resolved)
    if not out:
        raise ValueError("the MLTable's paths name no file inside the asset")
    return out


def preview_table(path: Path, kind: str, resolve_uri: Any = None) -> tuple[list[str], list[list[Any]],
                                                                         list[dict[str, Any]]]:
    """First rows of a tabular asset (CSV/TSV/Parquet/JSON lines file, a folder of them, or an MLTable)
    and a profile of its columns (type, non-null count, distinct count, min, max, mean) over the first
    :data:`PROFILE_ROWS` rows. Only files inside the asset are read (an MLTable's ``paths`` and a
    folder's links are checked when read, not only when the asset was registered: the folder may have
    changed since); ``resolve_uri`` resolves an MLTable's ``azureml://datastores/`` paths.
    Raises ValueError when the asset is not tabular, PathEscapeError naming a path that leads out."""
    import tempfile

    import pandas as pd
    import yaml

    if kind == "mltable" or (path.is_dir() and (path / "MLTable").exists()):
        import mltable

        spec = yaml.safe_load((path / "MLTable").read_text(encoding="utf-8")) or {}
        if not isinstance(spec, dict):
            raise ValueError("the MLTable file is not a mapping")
        files = _mltable_files(path, spec, resolve_uri or (lambda uri: (_ for _ in ()).throw(
            PathEscapeError(f"MLTable path {uri!r}: no datastore to resolve it", details={"value": uri}))))
        # read exactly the checked files: a copy of the MLTable naming them by their resolved paths
        with tempfile.TemporaryDirectory(prefix="openaml-preview-") as tmp:
            copy = {k: v for k, v in spec.items() if k in ("type", "transformations", "metadata")}
            copy["paths"] = [{"file": str(f)} for f in files]
            (Path(tmp) / "MLTable").write_text(yaml.safe_dump(copy), encoding="utf-8")
            df = mltable.load(tmp).take(PROFILE_ROWS).to_pandas_dataframe()
    else:
        root = (path if path.is_dir() else path.parent).resolve()
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        table = [p for p in files if p.suffix.lower() in (".csv", ".tsv", ".parquet", ".jsonl")]
        if not table:
            raise ValueError("no CSV, TSV, Parquet or JSON lines file to preview")
        first = table[0]
        if path.is_dir():
            first = _inside(root, first, first.relative_to(path).as_posix())
        suffix = first.suffix.lower()
        if suffix == ".parquet":
            df = pd.read_parquet(first).head(PROFILE_ROWS)
        elif suffix == ".jsonl":
            df = pd.read_json(first, lines=True, nrows=PROFILE_ROWS)
        else:
            df = pd.read_csv(first, sep="\t" if suffix == ".tsv" else ",", nrows=PROFILE_ROWS)
    cols = [str(c) for c in df.columns]
    rows = df.head(PREVIEW_ROWS).astype(object).where(df.head(PREVIEW_ROWS).notna(), None).values.tolist()
    profile = []
    for c in df.columns:
        s = df[c]
        item: dict[str, Any] = {"name": str(c), "type": str(s.dtype), "non_null": int(s.notna().sum()),
                                "distinct": int(s.nunique())}
        if pd.api.types.is_numeric_dtype(s) and s.notna().any():
            item.update(min=f"{s.min():.4g}", max=f"{s.max():.4g}", mean=f"{s.mean():.4g}")
        profile.append(item)
    return cols, rows, profile


def _asset_relative(message: str, local: Path | None, request: Request) -> str:
    """``message`` with the server's filesystem paths cut to the asset-relative path (a file of the
    asset is named by its path inside the asset; anything else in the workspace by ``<workspace>``)."""
    roots: list[tuple[str, str]] = []
    if local is not None:
        folder = local if local.is_dir() else local.parent
        for p in {str(folder), str(folder.resolve())}:
            roots.append((p + "/", ""))
            roots.append((p, "."))
    for p in {str(request.app.state.ctx.layout.root), str(Path(request.app.state.ctx.layout.root).resolve())}:
        roots.append((p, "<workspace>"))
    for prefix, repl in sorted(roots, key=lambda r: -len(r[0])):
        message = message.replace(prefix, repl)
    return message


@router.get("/data", response_class=HTMLResponse)
def data_list(request: Request) -> HTMLResponse:
    return render_list(request, title="Data assets", noun="data",
                  items=services(request)["data"].list(), columns=("name", "version", "type", "path"))


@router.get("/data/{name}", response_class=HTMLResponse)
def data_page(request: Request, name: str, version: str | None = None) -> HTMLResponse:
    svc = services(request)["data"]
    version = version or None  # an empty ?version= (a GET form's) is the latest
    try:
        asset = svc.get(name, version=version, label=None if version else "latest")
    except (NotFoundError, ValidationError):
        return _missing_version(request, svc, "data asset", "data", name, version)
    versions = [v for v in svc.list(name=name)]
    preview: dict[str, Any] = {}
    local: Path | None = None
    try:
        local = Path(svc.local_path(dict(asset)))
        cols, rows, profile = preview_table(local, str(asset.get("type") or ""),
                                            services(request)["datastores"].resolve)
        preview = {"columns": cols, "rows": rows, "profile": profile}
    except PathEscapeError as e:  # a path leading out of the asset: refused, named, nothing read
        preview = {"error": _asset_relative(str(e), local, request)}
        return render(request, "data.html", status_code=400, asset=asset, versions=versions, preview=preview)
    except (ValueError, OSError, OpenAMLError, ImportError) as e:
        preview = {"error": _asset_relative(str(e), local, request)}
    except Exception as e:  # noqa: BLE001 - a file pandas cannot parse: say why instead of failing the page
        preview = {"error": _asset_relative(f"{type(e).__name__}: {e}", local, request)}
    return render(request, "data.html", asset=asset, versions=versions, preview=preview)


# ---------------------------------------------------------------------------- datastores
@router.get("/datastores", response_class=HTMLResponse)
def datastores(request: Request) -> HTMLResponse:
    return render_list(request, title="Datastores", noun="datastores",
                  items=services(request)["datastores"].list(), columns=("name", "type", "is_default", "path"))


@router.get("/datastores/{name}", response_class=HTMLResponse)
@router.get("/datastores/{name}/browse/{rel:path}", response_class=HTMLResponse)
def datastore_page(request: Request, name: str, rel: str = "") -> HTMLResponse:
    """A datastore's definition and a listing of one of its folders (through its datastore port)."""
    svc = services(request)["datastores"]
    try:
        store = svc.get(name)
        port = svc.port(name)
    except (NotFoundError, ValidationError):
        return _missing(request, f"datastore {name!r}", "/datastores", "all datastores")
    entries: list[dict[str, Any]] = []
    error = None
    try:
        listing = port.ls(rel) if hasattr(port, "ls") else []
        for e in listing[:1000]:
            item = e if isinstance(e, dict) else {"name": str(e)}
            nm = str(item.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
            entries.append({"name": nm, "path": f"{rel}/{nm}".lstrip("/"),
                            "dir": item.get("type") == "directory" or item.get("dir", False),
                            "size": item.get("size")})
    except NotFoundError:  # no such folder: the 404 page, with a link to the datastore's root
        return _missing(request, f"folder {rel!r} in datastore {name!r}", f"/datastores/{name}", f"datastore {name}")
    except ValidationError as e:  # a path leading out of the datastore, a file: the 400 page naming it
        return bad_request(request, f"Bad folder path: {e.message}", f"/datastores/{quote(name, safe='')}",
                           f"datastore {name}")
    except Exception as e:  # noqa: BLE001 - an unreachable store shows why
        error = f"{type(e).__name__}: {e}"
    return render(request, "datastore.html", store=store, rel=rel, entries=entries, error=error)


# ---------------------------------------------------------------------------- environments, components
@router.get("/environments", response_class=HTMLResponse)
def environments(request: Request) -> HTMLResponse:
    return render_list(request, title="Environments", noun="environments",
                  items=services(request)["environments"].list(), columns=("name", "version", "image", "build_status"))


@router.get("/environments/{name}", response_class=HTMLResponse)
def environment_page(request: Request, name: str, version: str | None = None) -> HTMLResponse:
    svc = services(request)["environments"]
    version = version or None  # an empty ?version= (a GET form's) is the latest
    try:
        env = svc.get(name, version=version, label=None if version else "latest")
    except (NotFoundError, ValidationError):
        return _missing_version(request, svc, "environment", "environments", name, version)
    from openaml.server.studio._snapshot import build_log

    kind = "base" if env.get("build_status") == "base" else "venv"
    log, size, note = build_log(request, {"kind": kind, "spec_hash": env.get("spec_hash")})
    if env.get("build_status") == "not built" and log is not None:
        # a build left its log but no ready environment: it failed (or is running now), never "not built"
        env = {**env, "build_status": "failed or in progress: not ready (the build log below says which)"}
    return render(request, "detail.html", title=f"Environment {name}:{env.get('version')}", item=env,
                  versions=svc.list(name=name), noun="environments", back="/environments",
                  build=({"log": log, "size": size, "note": note}))


@router.get("/components", response_class=HTMLResponse)
def components(request: Request) -> HTMLResponse:
    return render_list(request, title="Components", noun="components",
                  items=services(request)["components"].list(), columns=("name", "version", "type", "display_name"))


@router.get("/components/{name}", response_class=HTMLResponse)
def component_page(request: Request, name: str, version: str | None = None) -> HTMLResponse:
    svc = services(request)["components"]
    version = version or None  # an empty ?version= (a GET form's) is the latest
    try:
        comp = svc.get(name, version=version, label=None if version else "latest")
    except (NotFoundError, ValidationError):
        return _missing_version(request, svc, "component", "components", name, version)
    # where used: the pipeline jobs one of whose nodes ran this version (the store's query of job plans)
    used_by = request.app.state.ctx.store.jobs_using_component(name, str(comp.get("version")))
    return render(request, "detail.html", title=f"Component {name}:{comp.get('version')}", item=comp,
                  versions=svc.list(name=name), noun="components", back="/components", used_by=used_by)


# ---------------------------------------------------------------------------- computes
@router.get("/computes", response_class=HTMLResponse)
def computes(request: Request) -> HTMLResponse:
    return render_list(request, title="Computes", noun="computes", items=services(request)["computes"].list(),
                  columns=("name", "type", "max_instances", "running_jobs", "queued_jobs", "provisioning_state"))


@router.get("/computes/{name}", response_class=HTMLResponse)
def compute_page(request: Request, name: str) -> HTMLResponse:
    ctx = request.app.state.ctx
    try:
        comp = services(request)["computes"].get(name)
    except (NotFoundError, ValidationError):
        return _missing(request, f"compute {name!r}", "/computes", "all computes")
    active = ctx.store.list_jobs(status=["Queued", "Preparing", "Starting", "Running", "Finalizing"],
                                 compute=name, limit=200)
    return render(request, "compute.html", comp=comp, active=active)


# ---------------------------------------------------------------------------- models
@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> HTMLResponse:
    return render_list(request, title="Models", noun="models", items=services(request)["models"].list(),
                  columns=("name", "version", "type", "job_name"))


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, version: str | None = None) -> HTMLResponse:
    """A model version: the job that produced it, the deployments that serve it, its files."""
    svc = services(request)
    version = version or None  # an empty ?version= (a GET form's) is the latest
    try:
        model = svc["models"].get(name, version=version, label=None if version else "latest")
    except (NotFoundError, ValidationError):
        return _missing_version(request, svc["models"], "model", "models", name, version)
    versions = svc["models"].list(name=name)
    used_by = []
    newest = str(max((v["version"] for v in versions), key=sort_key, default=model["version"]))
    # online and batch deployments (Azure ML studio's model page lists both kinds of endpoint)
    for kind, eps in (("online", svc["endpoints"]), ("batch", svc["batch_endpoints"])):
        for ep in eps.list_endpoints():
            for dep in eps.list_deployments(ep["name"]):
                ref = dep.get("model")
                text = ref if isinstance(ref, str) else str((ref or {}).get("name", ""))
                text = text.replace("azureml:", "", 1)
                if isinstance(ref, dict) and ref.get("version") and ":" not in text:
                    text = f"{text}:{ref['version']}"
                ref_name, _, ref_version = text.split("@")[0].partition(":")
                # a versioned reference serves that version; a name or a label (stored before deployments
                # pinned their version) is taken as the newest version
                if ref_name == name and (ref_version or newest) == str(model["version"]):
                    used_by.append({"endpoint": ep["name"], "deployment": dep["name"], "kind": kind})
    files: list[dict[str, Any]] = []
    try:
        root = svc["models"].local_path(name, str(model["version"]))
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:500]
        files = [{"name": p.relative_to(root.parent if root.is_file() else root).as_posix(), "size": p.lstat().st_size}
                 for p in paths]  # lstat: a link's own size, never its target's
    except (OpenAMLError, OSError):
        pass
    return render(request, "model.html", model=model, versions=versions, used_by=used_by, files=files)


# ---------------------------------------------------------------------------- schedules
@router.get("/schedules", response_class=HTMLResponse)
def schedules(request: Request) -> HTMLResponse:
    # every schedule, disabled ones included: a disabled schedule must stay visible to be enabled again
    return render(request, "schedules.html", items=services(request)["schedules"].list("All"))


# ---------------------------------------------------------------------------- online endpoints
@router.get("/online-endpoints", response_class=HTMLResponse)
def endpoints(request: Request) -> HTMLResponse:
    return render_list(request, title="Online endpoints", noun="online-endpoints",
                  items=services(request)["endpoints"].list_endpoints(),
                  columns=("name", "provisioning_state", "traffic", "scoring_uri"))


@router.get("/online-endpoints/{name}", response_class=HTMLResponse)
def endpoint_page(request: Request, name: str) -> HTMLResponse:
    """An endpoint: deployments (state, logs), traffic and mirror edit, keys on request, a Test tab."""
    svc = services(request)["endpoints"]
    try:
        ep = svc.get_endpoint(name)
    except (NotFoundError, ValidationError):
        return _missing(request, f"online endpoint {name!r}", "/online-endpoints", "all online endpoints")
    deps = svc.list_deployments(name)
    logs = {}
    for d in deps:
        try:
            logs[d["name"]] = svc.get_logs(name, d["name"], lines=50)
        except OpenAMLError as e:
            logs[d["name"]] = str(e)
    return render(request, "endpoint.html", ep=ep, deps=deps, logs=logs)


@router.get("/models/{name}/files/{rel:path}", response_model=None)
def model_file(request: Request, name: str, rel: str, version: str | None = None) -> HTMLResponse | FileResponse:
    """One file of a model version: shown when it is UTF-8 text of at most 1 MB, else why not and a
    download link; ``?download=1`` downloads it. Paths are confined to the version's files
    (``safe_join``: ``..``, absolute paths and links out answer 400)."""
    from openaml.datastores._paths import safe_join
    from openaml.server.studio._common import bad_request
    from openaml.server.studio._snapshot import read_text_file

    svc = services(request)["models"]
    version = version or None
    try:
        model = svc.get(name, version=version, label=None if version else "latest")
        root = Path(svc.local_path(name, str(model["version"])))
    except (NotFoundError, ValidationError):
        return _missing_version(request, svc, "model", "models", name, version)
    except OpenAMLError as e:  # a model whose files are not on this machine
        return _missing(request, f"file {rel!r} of model {name!r} ({e.message})", f"/models/{name}", f"model {name}")
    back = f"/models/{quote(name, safe='')}?version={quote(str(model['version']), safe='')}"
    try:  # a one-file model lists its file by name; a folder's files by their path inside it
        target = safe_join(root.parent if root.is_file() else root, rel, what="file path")
    except OpenAMLError as e:
        return bad_request(request, f"Bad file path {rel!r}: {e.message}", back, f"model {name}:{model['version']}")
    if not target.is_file() or (root.is_file() and target != root):
        return _missing(request, f"file {rel!r} in model {name}:{model['version']}", back,
                        f"model {name}:{model['version']}")
    if "download" in request.query_params:
        return FileResponse(target, media_type="application/octet-stream", filename=target.name,
                            headers={"x-content-type-options": "nosniff", "content-security-policy": "sandbox"})
    text, why = read_text_file(target)
    return render(request, "model_file.html", model=model, rel=rel, text=text, why=why, back=back,
                  size=target.stat().st_size)
