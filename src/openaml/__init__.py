"""openaml: a self-hosted Azure Machine Learning.

The public surface mirrors ``azure.ai.ml``: ``MLClient``, ``command``, ``Input``, ``Output`` and
the ``load_*`` functions. Porting code means changing imports and the ``MLClient(...)`` line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "MLClient",
    "command",
    "Input",
    "Output",
    "load_job",
    "load_component",
    "dsl",
    "load_data",
    "load_model",
    "load_environment",
    "load_compute",
    "load_datastore",
    "load_schedule",
    "load_batch_endpoint",
    "load_batch_deployment",
    "__version__",
]


def __getattr__(name: str) -> Any:  # lazy: `import openaml` stays cheap for the job runner
    if name == "MLClient":
        from openaml.sdk import MLClient

        return MLClient
    if name in ("Input", "Output"):
        from openaml import entities

        return getattr(entities, name)
    if name in ("command",):
        from openaml._builders import command

        return command
    if name == "dsl":
        import openaml.dsl as dsl

        return dsl
    if name in ("load_batch_endpoint", "load_batch_deployment"):
        from openaml.entities import _batch

        return getattr(_batch, name)
    if name.startswith("load_"):
        from openaml import _load

        return getattr(_load, name)
    raise AttributeError(f"module 'openaml' has no attribute {name!r}")
