"""MLflow artifact repository for ``azureml://datastores/...`` URIs (the ``azureml`` scheme).

Azure registers this scheme with MLflow through azureml-mlflow; openaml registers it through the
entry point ``mlflow.artifact_repository`` so ``mlflow.artifacts.download_artifacts(
artifact_uri="azureml://datastores/<ds>/paths/<p>")`` and ``mlflow.pyfunc.load_model`` of such a
URI work in the user's own Python on the workspace's machine. The URI is resolved by the
``azureml`` fsspec filesystem (see ``openaml.sdk._fsspec``); a local datastore is then read and
written as a local artifact folder.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

__all__ = ["AzureMLArtifactRepository"]


class AzureMLArtifactRepository(LocalArtifactRepository):
    """Artifacts under an ``azureml://`` datastore URI of a local datastore.

    Raises:
        MlflowException: the URI is not a datastore URI, or its datastore is not on this machine.
    """

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None,
                 **kwargs: Any) -> None:
        from fsspec.core import url_to_fs

        from openaml.errors import OpenAMLError

        try:
            fs, path = url_to_fs(artifact_uri)
            local = fs.local_path(path)
        except (OpenAMLError, ValueError) as exc:  # the resolver's message names the datastore and the reason
            raise MlflowException(f"cannot open {artifact_uri}: {exc}") from None
        if local is None:
            raise MlflowException(f"{artifact_uri} is on a datastore whose files are not local to this machine; "
                                  "download it with fsspec (fsspec.open / fs.get) instead")
        super().__init__(local, tracking_uri, registry_uri)
        self.artifact_uri = artifact_uri
