"""The datastore port: where files live, and safe path handling for user-given paths.

``azureml://datastores/<name>/paths/<path>`` resolves through a datastore. The default
``workspaceblobstore`` is a folder of the workspace; ``local`` datastores are other folders.
Every user-given relative path goes through :func:`safe_join`, which refuses ``..``,
absolute paths and symlinks that leave the folder.
"""

from __future__ import annotations

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
    parse_datastore_uri,
    parse_job_output_uri,
    safe_extract_tar,
    safe_join,
)

__all__ = [
    "MLTABLE_FILE",
    "URL_SCHEMES",
    "DatastoreUri",
    "JobOutputUri",
    "is_url",
    "parse_datastore_uri",
    "parse_job_output_uri",
    "safe_extract_tar",
    "safe_join",
    "validate_mltable_folder",
    "validate_mltable_text",
]
