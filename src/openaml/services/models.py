"""Placeholder: being written."""

from __future__ import annotations

from typing import Any


class ModelService:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
