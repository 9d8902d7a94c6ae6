"""Application factory: REST API under /api/v1, MLflow under /mlflow, scheduler in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from openaml._settings import Settings
from openaml.errors import OpenAMLError
from openaml.server.studio._common import error_page
from openaml.services._context import WorkspaceContext
from openaml.store import MetadataStore, SecretBox, claim_workspace, redact_url
from openaml.tracking import Tracking, tracking_backend_url
from openaml.workspace import WorkspaceLayout, make_private

__all__ = ["create_app", "build_context"]

log = logging.getLogger("openaml.server")


def build_context(settings: Settings) -> WorkspaceContext:
    """Connect the ports of the workspace (no background work yet)."""
    layout = WorkspaceLayout(settings.workspace)
    info = layout.info()
    # the database `workspace create --database-url` recorded, unless the server was given one
    recorded = layout.database_settings()
    if settings.database_url is None and recorded.get("database_url"):
        settings.database_url = recorded["database_url"]
        settings.tracking_url = settings.tracking_url or recorded.get("tracking_url")
    layout.ensure()
    make_private(layout.root)
    store = MetadataStore(settings.metadata_url).start()
    store.secret_box = SecretBox(layout.root / "secret.key")
    try:
        claim_workspace(store, info, store.secret_box, where=redact_url(settings.metadata_url))
    except Exception:
        store.close()
        raise
    tracking = Tracking(layout, backend_uri=tracking_backend_url(settings))
    tracking.start()
    ctx = WorkspaceContext(settings=settings, layout=layout, store=store, tracking=tracking,
                           workspace_name=info["name"])
    from openaml.services import build_services

    build_services(ctx)
    ctx.services["users"].seal_existing()
    return ctx


def create_app(settings: Settings, *, url: str = "") -> FastAPI:
    """Build the ASGI app for one workspace. The scheduler runs while the app's lifespan is open."""
    ctx = build_context(settings)
    ctx.url = url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from openaml.services import start_services, stop_services

        start_services(ctx)
        from openaml.server.studio import warm_routes

        await warm_routes(app)  # the first request after a start does not prepare every route
        try:
            yield
        finally:
            stop_services(ctx)
            ctx.store.close()

    app = FastAPI(title="openaml", version=_version(), lifespan=lifespan,
                  description="Self-hosted Azure Machine Learning workspace API")
    app.state.ctx = ctx

    @app.exception_handler(OpenAMLError)
    async def _domain_error(_request: Request, exc: OpenAMLError) -> Response:
        return error_page(_request, exc.http_status, exc.message) or JSONResponse(exc.to_payload(),
                                                                                   status_code=exc.http_status)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", _request.method, _request.url.path)
        err = OpenAMLError(f"internal error: {type(exc).__name__}: {exc} (see the server log "
                           f"{ctx.layout.logs / 'server.log'})")
        return JSONResponse(err.to_payload(), status_code=500)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # unknown routes and methods answer in the API's error shape, not FastAPI's {"detail": ...}
        text = {404: f"no such route: {request.method} {request.url.path}",
                405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code)
        err = OpenAMLError(text or str(exc.detail))
        err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_page(request, exc.status_code, err.message) or JSONResponse(  # a browser: the studio's page
            err.to_payload(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_error(_request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"field '{loc}': {e.get('msg')}")
        err = OpenAMLError("; ".join(parts))
        err.code = "validation_error"
        return error_page(_request, 400, err.message) or JSONResponse(err.to_payload(), status_code=400)

    from openaml.server._auth import AuthMiddleware
    from openaml.server._serve import is_loopback

    # who is calling and may they (roles, job-token scope): one table in server/_auth.py
    app.add_middleware(AuthMiddleware, ctx=ctx, token=settings.token, open_loopback=is_loopback(settings.host))

    from openaml.server.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router, prefix="/api/v1")

    @app.get("/health", include_in_schema=False)
    def _health(request: Request) -> Any:
        # liveness for anyone; the workspace, role and leader only to an authenticated caller
        from openaml.server.routes.workspaces import health_of

        return health_of(ctx, request)

    from openaml.server.studio import mount_studio

    mount_studio(app)  # the studio: pages at /, /jobs, ... (openaml/studio)

    from openaml.server._scoring import ScoringShortcut, scoring_app

    scoring = scoring_app(ctx.services["endpoints"])
    app.mount("/endpoints", scoring)
    from openaml.server._mlflow_gate import RaiGateMlflow
    from openaml.services.workspace_files import SharedArtifacts

    # MLflow's registry writes pass the RAI gate on promotion (services/rai_gate.py)
    app.mount("/mlflow", RaiGateMlflow(SharedArtifacts(ctx.tracking.asgi_app(), ctx.services["files"]), ctx))
    # scoring requests skip the API's route matching and middleware (inside the guard, which still applies)
    app.add_middleware(ScoringShortcut, scoring=scoring)
    from openaml.server._guard import RequestGuard, allowed_host_names

    app.add_middleware(RequestGuard, allowed_hosts=allowed_host_names(settings.host, settings.allowed_hosts))
    return app


def _version() -> str:
    from openaml import __version__

    return __version__
