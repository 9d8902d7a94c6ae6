"""Constants named as in ``azure.ai.ml.constants`` (AssetTypes, InputOutputModes, ...)."""

from __future__ import annotations

__all__ = [
    "BatchDeploymentOutputAction",
    "DEFAULT_COMPUTE",
    "DEFAULT_DATASTORE",
    "UPLOAD_AREA",
    "JOB_AREA",
    "TERMINAL_JOB_STATUSES",
    "AssetTypes",
    "InputOutputModes",
    "JobStatus",
    "ListViewType",
    "ModelType",
]

DEFAULT_DATASTORE = "workspaceblobstore"
#: the folder of a datastore where the SDK and CLI upload local files (Azure's ``LocalUpload/<hash>/``),
#: by content hash; no job output may land in it
UPLOAD_AREA = "LocalUpload"
#: the folder of every datastore that holds the jobs' default output folders (``azureml/<job>/<output>/``);
#: only job ``<job>`` (and the pipeline or sweep it runs in) may write under ``azureml/<job>/``
JOB_AREA = "azureml"
DEFAULT_COMPUTE = "local"


class BatchDeploymentOutputAction:
    """``output_action`` values (azure-ai-ml ``BatchDeploymentOutputAction``): ``append_row`` collects
    what every ``run()`` returns into one file (``output_file_name``); ``summary_only`` keeps nothing
    (scripts write their own files to the output folder)."""

    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


class AssetTypes:
    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"
    MLFLOW_MODEL = "mlflow_model"
    CUSTOM_MODEL = "custom_model"
    TRITON_MODEL = "triton_model"


DATA_TYPES = (AssetTypes.URI_FILE, AssetTypes.URI_FOLDER, AssetTypes.MLTABLE)
MODEL_TYPES = (AssetTypes.CUSTOM_MODEL, AssetTypes.MLFLOW_MODEL, AssetTypes.TRITON_MODEL)
PRIMITIVE_TYPES = ("string", "number", "integer", "boolean")


class InputOutputModes:
    RO_MOUNT = "ro_mount"
    RW_MOUNT = "rw_mount"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    DIRECT = "direct"
    MOUNT = "mount"
    EVAL_MOUNT = "eval_mount"
    EVAL_DOWNLOAD = "eval_download"


INPUT_MODES = ("ro_mount", "download", "direct", "eval_mount", "eval_download")
OUTPUT_MODES = ("rw_mount", "upload", "mount", "direct")


class ModelType:
    CUSTOM = "custom_model"
    MLFLOW = "mlflow_model"
    TRITON = "triton_model"


class ListViewType:
    """Which versions ``list`` returns (azure-ai-ml ``ListViewType``)."""

    ACTIVE_ONLY = "ActiveOnly"
    ARCHIVED_ONLY = "ArchivedOnly"
    ALL = "All"


class JobStatus:
    """Job statuses as azure-ai-ml reports them (spec 14.3)."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
