"""Online serving runtime: the deployment worker (a standalone script run in the deployment's
environment) and the path to it, and the supervisor of the workers (:mod:`openaml.serving._supervisor`).
The router lives in server/_scoring.py.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WORKER_SCRIPT"]

#: run as ``<python> WORKER_SCRIPT <config.json>``; standard library only.
WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
