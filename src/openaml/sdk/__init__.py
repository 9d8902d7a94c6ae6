"""The Python SDK, shaped as azure-ai-ml v2 (``MLClient`` and its operation groups)."""

from __future__ import annotations

from openaml.sdk._client import MLClient

__all__ = ["MLClient"]
