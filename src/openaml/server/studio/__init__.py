"""The studio: the workspace's web UI, served by the workspace server at ``/``.

Server-rendered Jinja2 templates (one per noun, shared partials for tables, charts, the log viewer
and the pipeline graph), htmx for partial refreshes, a little plain JavaScript for live logs
(server-sent events) and for actions, which call ``/api/v1`` from the page with a JSON body so that
the API's role checks and its cross-site guard apply unchanged. Assets live in this package
(``static/``): no CDN, works offline. See docs/architecture.md (the studio) and docs/guide/studio.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mount_studio", "studio_url", "warm_up", "warm_routes"]


def studio_url(base: str, *parts: str) -> str:
    """The studio page of an entity: ``studio_url(url, "jobs", name)`` -> ``<url>/jobs/<name>``."""
    from urllib.parse import quote

    return base.rstrip("/") + "/" + "/".join(quote(p, safe="") for p in parts)


def mount_studio(app: Any) -> None:
    """Add the studio's pages (``/``, ``/jobs``, ...), its login page and its static files to ``app``."""
    from fastapi.staticfiles import StaticFiles

    from openaml.server.studio._batch import router as batch_router
    from openaml.server.studio._common import STATIC_DIR
    from openaml.server.studio._jobs import router as jobs_router
    from openaml.server.studio._login import router as login_router
    from openaml.server.studio._nouns import router as nouns_router
    from openaml.server.studio._rai import router as rai_router
    from openaml.server.studio._rai_explain import router as explain_router
    from openaml.server.studio._snapshot import router as snapshot_router

    app.include_router(login_router)
    app.include_router(nouns_router)
    app.include_router(jobs_router)
    app.include_router(rai_router)
    app.include_router(explain_router)
    app.include_router(batch_router)
    app.include_router(snapshot_router)
    app.mount("/studio-static", StaticFiles(directory=str(STATIC_DIR)), name="studio-static")
    warm_up(app.state.ctx)


def warm_up(ctx: Any) -> None:
    """Pay at server start what the first request after a start would pay: compiling every template
    (about half a second for all of them) and the first compile of the job list's and the chart's
    queries (SQLAlchemy caches a statement's SQL after its first use). A failure here is left to the
    request that meets it."""
    from openaml.server.studio._common import compile_templates
    from openaml.store import JobQuery

    compile_templates()
    for warm in (lambda: ctx.store.page_jobs(JobQuery(per_page=1)), lambda: ctx.tracking.experiment_names(),
                 lambda: ctx.store.count_jobs(status=["Running"]),
                 lambda: ctx.tracking.metric_series("openaml-warm-up", "warm-up")):
        try:
            warm()
        except Exception:  # noqa: BLE001, S112 - warming is best effort
            continue


async def warm_routes(app: Any) -> None:
    """Have the app's router prepare every route now (called at server start).

    FastAPI prepares a router's routes (their parameters and dependencies) the first time a request
    walks them, so the first request after a start paid a few hundred milliseconds for all of them.
    Two requests for paths that match nothing, sent straight to the router (no middleware, nothing
    answered to anyone), walk every route of the API and of the studio."""
    for path in ("/api/v1/openaml-warm-up/-", "/openaml-warm-up/-/-/-"):
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
                 "scheme": "http", "query_string": b"", "headers": [], "client": ("127.0.0.1", 0),
                 "server": ("127.0.0.1", 80), "http_version": "1.1", "app": app, "state": {}}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_message: Any) -> None:
            return None

        try:
            await app.router(scope, receive, send)
        except Exception:  # noqa: BLE001, S112 - a path nothing answers: the 404 is expected
            continue
