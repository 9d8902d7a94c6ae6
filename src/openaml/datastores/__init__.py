"""The datastore port: where files live, and safe path handling for user-given paths.

``azureml://datastores/<name>/paths/<path>`` resolves through a datastore. A datastore is a
:class:`DatastorePort` (open/get/put/ls/exists/rm/info/url over fsspec, paths relative to its
root that never leave it) chosen by its ``type`` through :func:`open_datastore`; the default
``workspaceblobstore`` is a folder of the workspace and ``local`` datastores are other folders
(:class:`LocalDatastore`). Every user-given relative path goes through :func:`safe_join` (local
folders) or :func:`relative_parts`, which refuse NUL, ``..``, absolute paths and symlinks that
leave the folder. :func:`tar_stream` streams a file or folder as a tar, chunk by chunk.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from openaml.datastores._mltable import (
    MLTABLE_FILE,
    URL_SCHEMES,
    is_url,
    validate_mltable_folder,
    validate_mltable_text,
)
from openaml.datastores._paths import (
    DatastoreUri,
    JobOutputUri,
    local_url_paths,
    parse_datastore_uri,
    parse_job_output_uri,
    relative_parts,
    safe_extract_tar,
    safe_join,
)

if TYPE_CHECKING:
    from openaml.datastores._base import CHUNK, DatastorePort
    from openaml.datastores._local import LocalDatastore
    from openaml.datastores._registry import BACKENDS, backend_class, open_datastore, supported_types
    from openaml.datastores._tar import tar_stream

# the port imports fsspec (~60 ms): loaded on first use, so the SDK and CLI start without it
_LAZY = {"CHUNK": "_base", "DatastorePort": "_base", "LocalDatastore": "_local", "BACKENDS": "_registry",
         "backend_class": "_registry", "open_datastore": "_registry", "supported_types": "_registry",
         "tar_stream": "_tar"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

__all__ = [
    "BACKENDS",
    "CHUNK",
    "MLTABLE_FILE",
    "URL_SCHEMES",
    "DatastorePort",
    "DatastoreUri",
    "JobOutputUri",
    "LocalDatastore",
    "local_url_paths",
    "backend_class",
    "is_url",
    "open_datastore",
    "parse_datastore_uri",
    "parse_job_output_uri",
    "relative_parts",
    "safe_extract_tar",
    "safe_join",
    "supported_types",
    "tar_stream",
    "validate_mltable_folder",
    "validate_mltable_text",
]
