"""Placeholder: being written."""

from __future__ import annotations

from typing import Any


class JobService:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self) -> None: ...

    def resolve_output_uri(self, uri: Any) -> Any:
        raise NotImplementedError
