"""Fixtures of the security tests: one real server of their own (users are created in it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerHandle, start_server


@pytest.fixture(scope="module")
def sec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A loopback server started without a token (the default), in its own workspace."""
    handle = start_server(tmp_path_factory.mktemp("sec") / "ws", name=f"sec-{uuid.uuid4().hex[:8]}")
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def owner(sec_server: ServerHandle) -> Iterator[Any]:
    from openaml import MLClient

    client = MLClient(workspace=sec_server.url)
    yield client
    client.close()


def user_token(owner: Any, name: str, role: str) -> str:
    token = owner.users.create(name, role).token
    assert token and len(token) >= 40
    return token


def api(url: str, token: str | None) -> httpx.Client:
    """A raw HTTP client of the server with ``token`` (None: no Authorization header)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def workspace_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_symlink()]
