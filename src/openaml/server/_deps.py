"""Request-scoped access to the workspace context."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from openaml.services._context import WorkspaceContext


def get_ctx(request: Request) -> WorkspaceContext:
    return request.app.state.ctx


def service(request: Request, noun: str) -> Any:
    return request.app.state.ctx.services[noun]
