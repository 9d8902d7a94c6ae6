"""The environments port: what interpreter a job runs in, and building it.

No server dependency: the job runner calls this in its own process (the server's interpreter).

Usage (job runner)::

    from openaml.environments import resolve_spec, spec_from_dict, ensure_environment

    spec = spec_from_dict(job_spec["environment"])       # dict from EnvironmentService.resolve_for_job
    # or: spec = resolve_spec("AzureML-sklearn-1.5@latest") / resolve_spec({"conda_file": {...}})
    for w in spec.warnings:
        log.write(f"[openaml] environment: {w}\\n")      # top of the job's log
    bin_dir = ensure_environment(spec, layout.envs, log=log_path)   # the shared, cached env
    job_bin = job_layer(bin_dir, job_dir / "venv", find_uv())        # the job's own layer over it
    env["PATH"] = f"{job_bin}{os.pathsep}{env['PATH']}"

See docs/guide/environments.md for the curated table and the image-only fallback.
"""

from __future__ import annotations

from openaml.environments._build import READY_MARKER, ensure_environment, env_info, env_path, env_status, find_uv
from openaml.environments._conda import load_conda_file, parse_conda, read_build_context
from openaml.environments._layer import job_layer
from openaml.environments._refs import (
    CODE_URI_PREFIX,
    CURATED,
    CURATED_PREFIX,
    CuratedEnv,
    EnvRef,
    curated_names,
    lookup_curated,
    parse_reference,
)
from openaml.environments._sandbox import interpreter_roots, read_only_mounts_available, server_prefix, wrap_read_only
from openaml.environments._spec import (
    EnvOptions,
    EnvSpec,
    resolve_spec,
    server_python,
    server_versions,
    spec_from_dict,
)

__all__ = [
    "CODE_URI_PREFIX",
    "CURATED",
    "CURATED_PREFIX",
    "READY_MARKER",
    "CuratedEnv",
    "EnvOptions",
    "EnvRef",
    "EnvSpec",
    "curated_names",
    "ensure_environment",
    "env_info",
    "job_layer",
    "read_only_mounts_available",
    "server_prefix",
    "wrap_read_only",
    "interpreter_roots",
    "env_path",
    "env_status",
    "find_uv",
    "load_conda_file",
    "lookup_curated",
    "parse_conda",
    "parse_reference",
    "read_build_context",
    "resolve_spec",
    "server_python",
    "server_versions",
    "spec_from_dict",
]
