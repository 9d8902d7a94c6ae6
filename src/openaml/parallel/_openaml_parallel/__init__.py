"""The parallel job's engine (its driver and its workers): a standalone package, run with the job's own Python.

It runs on the job's Python, 3.7 or later (curated environments go back to 3.7). The server
copies this package into the job's code snapshot as ``_openaml_parallel/`` beside its entry script
``_openaml_parallel_driver.py`` (a copy of :mod:`openaml.parallel._driver`); the runner runs
``python _openaml_parallel_driver.py --config <base64 json> --input-data <path> [--append-row-to <path>] -- <program_arguments>``
in the job's environment (never the server's
interpreter). It imports nothing but the standard library (pandas/pyarrow only for tabular
inputs, from the job's environment).

Engine (docs/guide/batch.md, "Engine rules"):

- Plan: the input is cut into mini-batches, numbered from 0 in a stable order: a folder's files
  sorted by relative path, ``mini_batch_size`` files each; a tabular input (csv/parquet file or
  MLTable) cut into chunks of about ``mini_batch_size`` bytes at row boundaries, file by file; a
  partitioned MLTable one mini-batch per value of ``partition_keys``.
- Workers: ``instance_count x max_concurrency_per_instance`` processes of the entry script
  (``--worker``), forked from a zygote (:mod:`.zygote`) or from the deployment's warm pool
  (:mod:`.pool`) where one serves, each importing the entry script and running ``init()`` once, then ``run()`` per
  mini-batch. A mini-batch whose ``run()`` raises, or overruns ``retry_settings.timeout`` (its
  worker is killed and replaced), or whose worker dies, is tried again up to ``max_retries`` times,
  then counted failed with all its items.
- Thresholds: the job fails (at once, the rest not run) when failed items exceed
  ``error_threshold`` or failed mini-batches exceed ``mini_batch_error_threshold`` (-1: never).
  Items are files (folders) or rows (tabular); a ``run()`` returning fewer rows than items counts
  the difference as failed items; more rows are all kept; both are said in the log.
- Output (``append_row_to``): the rows ``run()`` returned, one line each, mini-batch 0 first.
  ``logs/mini_batch_rows.csv`` says which lines came from which input.
- Journal: each mini-batch's rows are written to ``.openaml_parallel/rows/<index>.txt`` (written to a
  temporary name, then renamed) and its end appended to ``.openaml_parallel/journal.jsonl`` (one
  flushed and fsynced line). A driver started again in the same folder skips the mini-batches the
  journal names, and the output is assembled from the row files at the end: no mini-batch runs
  twice after it ended, no row appears twice.
"""

from __future__ import annotations
