"""Datastores: list, show, create_or_update."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

router = APIRouter(tags=["datastores"])


def _svc(request: Request) -> Any:
    return request.app.state.ctx.services["datastores"]


@router.get("/datastores")
def list_datastores(request: Request) -> list[dict[str, Any]]:
    return _svc(request).list()


@router.get("/datastores/{name}")
def get_datastore(request: Request, name: str) -> dict[str, Any]:
    return _svc(request).get(name)


@router.put("/datastores/{name}")
def put_datastore(request: Request, name: str, spec: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return _svc(request).create_or_update({**spec, "name": name})
