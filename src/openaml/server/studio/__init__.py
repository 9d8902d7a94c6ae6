"""The studio: the workspace's web UI, served by the workspace server at ``/``.

Server-rendered Jinja2 templates (one per noun, shared partials for tables, charts, the log viewer
and the pipeline graph), htmx for partial refreshes, a little plain JavaScript for live logs
(server-sent events) and for actions, which call ``/api/v1`` from the page with a JSON body so that
the API's role checks and its cross-site guard apply unchanged. Assets live in this package
(``static/``): no CDN, works offline. See docs/architecture.md (the studio) and docs/guide/studio.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mount_studio", "studio_url"]


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
