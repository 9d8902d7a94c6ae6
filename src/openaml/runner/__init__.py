"""The job runner: ``python -m openaml.runner <job folder>``.

Runs one job on a compute slot, in its own process group, independent of the server (it
survives a server restart). It reads ``runner.json`` written by the server, and reports through
``state.json`` (atomic writes; heartbeat every few seconds) which the server's scheduler reads:

1. Preparing: build or reuse the environment, copy the code snapshot into ``wd/``, resolve
   inputs to local paths (``ro_mount``/``eval_mount``: the datastore path itself; ``download``:
   a copy; ``direct``: the URI), create output staging folders.
2. Running: render the command (``${{inputs.x}}``, ``${{outputs.y}}``, ``$[[...]]``), set the
   environment variables Azure ML sets (spec 14.1), run ``bash -c`` in a new process group,
   stream stdout+stderr to ``user_logs/std_log.txt``. Where ``unshare -m`` works, the command runs
   in a mount namespace of its own that holds the read-only inputs and hides the workspace's
   secrets (``_hide``); elsewhere the job's log and warnings say the secrets are not hidden.
3. Finalizing: copy ``./outputs`` and ``./logs`` into the run's artifacts, move declared outputs
   from staging into their datastore paths (only on success: a failed job leaves no partial
   output behind), and write the final status.

SIGTERM (cancel) kills the user's process group (TERM, then KILL after a grace period);
``limits.timeout`` does the same and ends the job Canceled with the reason.

This module imports nothing heavy (no pydantic, no mlflow): its start-up is part of every job's
overhead.
"""
