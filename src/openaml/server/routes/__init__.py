"""One router per noun; handlers parse, call one service, return."""

from __future__ import annotations

from openaml.server.routes import (
    batch_endpoints,
    components,
    computes,
    data,
    datastores,
    environments,
    jobs,
    models,
    runner,
    schedules,
    uploads,
    users,
    workspaces,
)
from openaml.server.routes import endpoints as online_endpoints

ROUTERS = [
    workspaces.router,
    datastores.router,
    data.router,
    environments.router,
    computes.router,
    jobs.router,
    components.router,
    models.router,
    online_endpoints.router,
    batch_endpoints.router,
    schedules.router,
    uploads.router,
    users.router,
    runner.router,
]

__all__ = ["ROUTERS"]
