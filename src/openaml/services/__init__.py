"""Use cases. The only layer that routes call (ARCHITECTURE.md, "Layers").

One module per noun; each exposes a service class constructed with the workspace context.

What a service returns to a route is a typed record (:mod:`openaml.records`: ``JobRecord``,
``DataVersionRecord`` ...). ``dict[str, Any]`` stays, on purpose, for what is free-form: a user's
spec (job YAML, asset fields) on its way in, tags and properties, and the store's rows and the
runner's resolved inputs/environment that the services pass between their own modules (the store
port returns plain rows; typing them is the store's own step).
"""

from __future__ import annotations

from openaml.services._context import WorkspaceContext

__all__ = ["WorkspaceContext", "build_services", "start_services", "stop_services"]


def build_services(ctx: WorkspaceContext) -> None:
    """Construct every service (no background work) and seed the workspace defaults."""
    from openaml.services.batch_endpoints import BatchEndpointService
    from openaml.services.components import ComponentService
    from openaml.services.computes import ComputeService
    from openaml.services.data import DataService
    from openaml.services.datastores import DatastoreService
    from openaml.services.endpoints import EndpointService
    from openaml.services.environments import EnvironmentService
    from openaml.services.jobs import JobService
    from openaml.services.models import ModelService
    from openaml.services.runners import RunnerService
    from openaml.services.schedules import ScheduleService
    from openaml.services.uploads import UploadService
    from openaml.services.users import UserService

    ctx.services["datastores"] = DatastoreService(ctx)
    ctx.services["uploads"] = UploadService(ctx)
    ctx.services["data"] = DataService(ctx)
    ctx.services["environments"] = EnvironmentService(ctx)
    ctx.services["computes"] = ComputeService(ctx)
    ctx.services["models"] = ModelService(ctx)
    ctx.services["jobs"] = JobService(ctx)
    ctx.services["components"] = ComponentService(ctx)
    ctx.services["endpoints"] = EndpointService(ctx)
    ctx.services["batch_endpoints"] = BatchEndpointService(ctx)
    ctx.services["schedules"] = ScheduleService(ctx)
    ctx.services["users"] = UserService(ctx)
    ctx.services["runners"] = RunnerService(ctx)
    from openaml.services.workspace_files import WorkspaceFiles

    ctx.services["files"] = ctx.tracking.files = WorkspaceFiles(ctx)  # shared with other servers
    ctx.services["datastores"].ensure_default()
    ctx.services["computes"].ensure_default()


def start_services(ctx: WorkspaceContext) -> None:
    """Start background work (the job scheduler and controller, the deployments' workers; reconcile
    jobs left by a previous server) on the server that leads the workspace: every server when the
    metadata is SQLite (one per folder), one of them when it is PostgreSQL (:mod:`._leadership`)."""
    from openaml.services._leadership import BackgroundWork

    work = BackgroundWork(ctx)
    ctx.services["background"] = work
    work.start()


def stop_services(ctx: WorkspaceContext) -> None:
    from openaml.environments._layer import stop_precompiles

    work = ctx.services.pop("background", None)
    if work is not None:
        work.stop()
    stop_precompiles(ctx.layout.envs)
