"""Studio pages of batch endpoints: the list, an endpoint (its deployments and their settings, the
default deployment, the jobs its invocations created, invoke, delete) and a deployment.

Azure ML studio's batch endpoint page is the model: the "Deployments" tab (which one is the default,
"Set as default", delete), the "Jobs" tab (each invocation's scoring job, its status and output) and
"Create job" (invoke with a data asset or a datastore path). Reads go through the batch endpoint
service (``services/batch_endpoints.py``), as the API and SDK do; actions are calls to ``/api/v1``
from the page (studio.js), so the API's role checks apply.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openaml.errors import NotFoundError, OpenAMLError, ValidationError
from openaml.server.studio._common import fmt_time, not_found, render, render_list, services
from openaml.store import JobQuery

__all__ = ["router", "SETTINGS", "MAX_JOBS", "deployment_settings", "setting_links"]

router = APIRouter(include_in_schema=False)

MAX_JOBS = 200  # scoring jobs listed on an endpoint's or a deployment's page (newest first; the total is shown)

#: the settings of a batch deployment shown on its page (Azure's ``settings`` block, flattened)
SETTINGS = ("mini_batch_size", "max_concurrency_per_instance", "output_action", "output_file_name",
            "error_threshold", "logging_level", "retry_settings", "environment_variables")


def deployment_settings(dep: dict[str, Any]) -> dict[str, Any]:
    """The settings of a deployment as the page shows them: ``type``, model or component, code,
    environment, compute, instance count, then :data:`SETTINGS` (only those set)."""
    code = dep.get("code_configuration") or {}
    out: dict[str, Any] = {"type": dep.get("type") or "model"}
    if dep.get("component"):
        out["component"] = dep["component"] if isinstance(dep["component"], str) else \
            (dep["component"] or {}).get("name", "inline component")
    if dep.get("model"):
        m = dep["model"]
        out["model"] = m if isinstance(m, str) else f"{m.get('name', '')}:{m.get('version', '')}"
    if code:
        out["scoring_script"] = code.get("scoring_script")
        out["code"] = code.get("code")
    if dep.get("environment"):
        env = dep["environment"]
        out["environment"] = env if isinstance(env, str) else (env.get("image") or env.get("name") or "inline")
    out["compute"] = dep.get("compute")
    out["instance_count"] = (dep.get("resources") or {}).get("instance_count") or dep.get("instance_count") or 1
    for k in SETTINGS:
        if dep.get(k) not in (None, {}, []):
            out[k] = dep[k]
    for k, v in (dep.get("settings") or {}).items():  # a pipeline deployment's settings
        out.setdefault(k, v)
    return {k: v for k, v in out.items() if v is not None}


def setting_links(settings: dict[str, Any]) -> dict[str, str]:
    """Studio pages of the assets a deployment's settings name: ``{"model": "/models/<name>?version=<v>",
    "component": ..., "environment": ..., "compute": ...}``; references are ``azureml:name:version``,
    ``azureml:name@label``, ``name:version`` or a bare name (an inline definition links nothing)."""
    from urllib.parse import quote

    out: dict[str, str] = {}
    for key, noun in (("model", "models"), ("component", "components"), ("environment", "environments"),
                      ("compute", "computes")):
        ref = settings.get(key)
        if not isinstance(ref, str) or not ref or ref in ("inline component", "inline") or "/" in ref:
            continue
        ref = ref.removeprefix("azureml:")
        name, _, version = ref.split("@", 1)[0].partition(":")
        if key == "compute":
            name, version = ref, ""
        out[key] = f"/{noun}/{quote(name, safe='')}" + (f"?version={quote(version, safe='')}"
                                                       if version and key in ("model", "component", "environment")
                                                       else "")
    return out


def _jobs(request: Request, endpoint: str, deployment: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """The endpoint's scoring jobs (of one deployment when given), newest first, at most
    :data:`MAX_JOBS`, and how many there are: one page of the store's job query on the tags an
    invocation sets (fast at 100,000 jobs, unlike loading every job): ``[{"name", "display_name",
    "deployment", "status", "created", "output"}]``, ``output`` the output to link to (``score``)."""
    from openaml.services.batch_endpoints import DEPLOYMENT_TAG, ENDPOINT_TAG

    tag = f"{DEPLOYMENT_TAG}={deployment}" if deployment else f"{ENDPOINT_TAG}={endpoint}"
    rows, total = request.app.state.ctx.store.page_jobs(JobQuery(tag=tag, per_page=MAX_JOBS))
    out = []
    for j in rows:
        tags = j["spec"].get("tags") or {}
        if tags.get(ENDPOINT_TAG) != endpoint or (deployment and tags.get(DEPLOYMENT_TAG) != deployment):
            # a deployment of the same name on another endpoint (or a LIKE wildcard's near miss)
            total -= 1
            continue
        outputs = j["spec"].get("outputs") or {}
        output = "score" if "score" in outputs else next(iter(outputs), None)
        out.append({"name": j["name"], "display_name": j.get("display_name") or "",
                    "deployment": tags.get(DEPLOYMENT_TAG, ""), "status": j["status"],
                    "created": fmt_time(j["created_at"]), "output": output})
    return out, total


@router.get("/batch-endpoints", response_class=HTMLResponse)
def batch_endpoints(request: Request) -> HTMLResponse:
    items = [{**e, "default_deployment": (e.get("defaults") or {}).get("deployment_name") or ""}
             for e in services(request)["batch_endpoints"].list_endpoints()]
    return render_list(request, title="Batch endpoints", noun="batch-endpoints", items=items,
                  columns=("name", "default_deployment", "provisioning_state", "scoring_uri"))


@router.get("/batch-endpoints/{name}", response_class=HTMLResponse)
def batch_endpoint_page(request: Request, name: str) -> HTMLResponse:
    """An endpoint: deployments (settings, the default marked, set default, delete), its jobs (status,
    output link), invoke from a data asset or a datastore path, delete the endpoint."""
    svc = services(request)["batch_endpoints"]
    try:
        ep = svc.get_endpoint(name)
        deps = svc.list_deployments(name)
    except (NotFoundError, ValidationError):
        return not_found(request, f"batch endpoint {name!r}", "/batch-endpoints", "all batch endpoints")
    default = (ep.get("defaults") or {}).get("deployment_name") or ""
    data = []
    try:
        data = [f"{d['name']}:{d['version']}" for d in services(request)["data"].list()]
    except OpenAMLError:
        pass
    datastores = [d["name"] for d in services(request)["datastores"].list()]
    jobs, total = _jobs(request, name)
    views = [{**d, "settings_view": deployment_settings(d)} for d in deps]
    return render(request, "batch_endpoint.html", ep=ep, deps=[{**d, "links": setting_links(d["settings_view"])}
                                                             for d in views],
                  default=default, jobs=jobs, jobs_total=total, data_assets=data, datastores=datastores)


@router.get("/batch-endpoints/{name}/deployments/{deployment}", response_class=HTMLResponse)
def batch_deployment_page(request: Request, name: str, deployment: str) -> HTMLResponse:
    """A deployment: its settings, whether it is the default, the jobs that ran it, delete."""
    svc = services(request)["batch_endpoints"]
    try:
        ep = svc.get_endpoint(name)
        dep = svc.get_deployment(name, deployment)
    except (NotFoundError, ValidationError):
        return not_found(request, f"batch deployment {deployment!r} of endpoint {name!r}",
                         f"/batch-endpoints/{name}", f"batch endpoint {name}")
    default = (ep.get("defaults") or {}).get("deployment_name") or ""
    jobs, total = _jobs(request, name, deployment)
    settings = deployment_settings(dep)
    return render(request, "batch_deployment.html", ep=ep, dep=dep, settings=settings, links=setting_links(settings),
                  is_default=default == deployment, jobs=jobs, jobs_total=total)
