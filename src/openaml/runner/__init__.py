"""The job runner: ``python -m openaml.runner --server URL --job NAME --work-dir DIR``.

Runs one job on a compute slot, in its own session, independent of the server (it survives a
server restart). A compute backend (``openaml.compute``) starts it with the job's scoped token on
its stdin (or in ``$OPENAML_RUNNER_TOKEN``); the server is its only link, over HTTP
(``_report``): it reads its spec (``GET /api/v1/jobs/<name>/runner/spec``), reports its state
(``POST .../runner/state``: Preparing, Running, Finalizing, then the end with the exit code, the
error and the log's tail), heartbeats every few seconds (``POST .../runner/heartbeat``, whose
answer carries a cancel) and sends its logs as they grow (``POST .../runner/logs``), which the
server appends to the job folder's ``user_logs/std_log.txt`` and ``system_logs/runner.log``:

1. Preparing: build or reuse the environment, copy the code snapshot into ``wd/``, resolve
   inputs to local paths (``ro_mount``/``eval_mount``: the datastore path itself; ``download``:
   a copy; ``direct``: the URI), create output staging folders.
2. Running: render the command (``${{inputs.x}}``, ``${{outputs.y}}``, ``$[[...]]``), set the
   environment variables Azure ML sets (spec 14.1), run ``bash -c`` in a process group of its
   own, writing stdout+stderr to ``runner/user_logs/std_log.txt`` of its work folder (shipped to
   the server). Where ``unshare -m`` works, the command runs in a mount namespace of its own that
   holds the read-only inputs and hides the workspace's secrets (``_hide``); elsewhere the job's
   log and warnings say the secrets are not hidden.
   A job with a ``distribution`` (or several instances) runs one such process per rank
   (``_launch`` plans them with the variables Azure sets, ``_ranks`` runs them): each writes
   ``user_logs/std_log_process_<rank>.txt``, combined into ``std_log.txt`` with a ``[rank N]``
   prefix; the first that fails stops the others and fails the job naming its rank.
3. Finalizing: copy ``./outputs`` and ``./logs`` into the run's artifacts, move declared outputs
   from staging into their datastore paths (only on success: a failed job leaves no partial
   output behind), send the rest of the logs, then the end.

A runner that does not see the server's disk (``_transfer.sees_server_disk``: the spec's
``workspace`` folder with its id) gets the code snapshot and inputs as tar streams from the
server (``GET .../runner/code``, ``GET .../runner/inputs/<name>``), sends declared outputs to it
(``PUT .../runner/outputs/<name>``, after a command that exited 0) and uploads ``./outputs``,
``./logs`` and its logs through MLflow's client (``_transfer``); it builds an environment with
packages in a folder of its own machine (``$OPENAML_RUNNER_ENVS``, default
``<openaml home>/runner-envs``) instead of the server's ``envs/``.

SIGTERM (the local backend's cancel) or a heartbeat answer naming a cancel kills the user's
process group (TERM, then KILL after a grace period); ``limits.timeout`` does the same and ends
the job Canceled with the reason. A server that refuses the job's reports for good (the job ended
there) stops the command too.

This package imports nothing heavy (no pydantic, no mlflow, no httpx): its start-up is part of
every job's overhead (MLflow's client is imported only to upload artifacts from another machine).
"""

from __future__ import annotations

__all__: list[str] = []
