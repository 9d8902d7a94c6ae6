"""``MLClient``: the azure-ai-ml v2 client, pointed at an openaml workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.errors import UnsupportedError, ValidationError
from openaml.workspace import WorkspaceTarget, discover

__all__ = ["MLClient", "Poller"]


class Poller:
    """What ``begin_*`` returns: ``.result()``, ``.done()``, ``.wait()`` as azure-core's LROPoller."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def status(self) -> str:
        return "Succeeded"


class MLClient:
    """Client of one workspace, named and shaped as ``azure.ai.ml.MLClient``.

    ``MLClient()`` finds the workspace as documented in :mod:`openaml.workspace`: explicit
    ``workspace`` (folder, index name or http URL), ``$OPENAML_WORKSPACE``, ``.openaml/config.json``
    upward from the current folder, else the default local workspace. A local workspace whose
    server is not running is started in the background. Azure's positional arguments
    (credential, subscription_id, resource_group_name, workspace_name) are accepted so ported code
    runs; ``workspace_name`` names a workspace in the local index.

    Raises:
        NotFoundError: the named workspace does not exist.
        ServerUnavailableError: a URL does not answer, or a local server did not start.
    """

    def __init__(self, credential: Any = None, subscription_id: str | None = None,
                 resource_group_name: str | None = None, workspace_name: str | None = None, *,
                 workspace: str | Path | None = None, token: str | None = None, autostart: bool = True,
                 **kwargs: Any) -> None:
        explicit = str(workspace) if workspace is not None else workspace_name
        target = discover(explicit, config_path=kwargs.pop("_config_path", None))
        #: ``MLClient(registry_name="azureml")``: components are read from that registry (openaml.rai.registry)
        self.registry_name: str | None = kwargs.pop("registry_name", None)
        self._init(target, token=token, autostart=autostart)
        self.subscription_id = subscription_id or "local"
        self.resource_group_name = resource_group_name or "local"

    def _init(self, target: WorkspaceTarget, *, token: str | None, autostart: bool) -> None:
        from openaml.sdk._connect import connect
        from openaml.sdk._http import Transport  # httpx is imported when a client is made, not with MLClient

        self._target = target
        url = connect(target, autostart=autostart)
        if not (token or target.token) and target.path is not None:
            token_file = target.path / "server.token"
            if token_file.is_file():
                token = token_file.read_text(encoding="utf-8").strip() or None
        if not (token or target.token):
            from openaml._credentials import load_token

            token = load_token(url)  # only the token saved for this very server URL
        self._transport = Transport(url, token or target.token)
        info = self._transport.get("/workspace")
        self.workspace_name: str = info["name"]
        self._workspace_info = info
        self._ops: dict[str, Any] = {}
        # azureml:// URIs from this client's answers open in pandas/fsspec/mltable of this process
        from openaml.sdk._current import register_client  # not _fsspec: fsspec finds it by entry point
        from openaml.sdk._mltable_hook import install_mltable_hook

        register_client(self)
        install_mltable_hook()

    @classmethod
    def from_config(cls, credential: Any = None, *, path: str | Path | None = None,
                    file_name: str | None = None, **kwargs: Any) -> MLClient:
        """Read ``.openaml/config.json`` (searched upward from ``path`` or the current folder)."""
        from openaml.workspace import _find_config

        start = Path(path) if path else Path.cwd()
        if start.is_file():
            cfg: Path | None = start
        else:
            cfg = (start / file_name) if file_name else _find_config(start)
        if cfg is None or not cfg.is_file():
            raise ValidationError(f"no .openaml/config.json found in {start} or its parents; create one with "
                                  '{"workspace": "<folder, name or http URL>"}')
        return cls(credential, _config_path=cfg, **kwargs)

    # ------------------------------------------------------------------ operation groups
    def _op(self, key: str, factory: Any) -> Any:
        if self.registry_name and key != "components":  # not the workspace's, silently
            raise UnsupportedError(f"MLClient(registry_name={self.registry_name!r}).{key}: registry "
                                   f"{self.registry_name!r} holds openaml's built-in components only here; use "
                                   f".components, and an MLClient without registry_name for the workspace's {key}")
        if key not in self._ops:
            self._ops[key] = factory(self)
        return self._ops[key]

    @property
    def jobs(self) -> Any:
        from openaml.sdk._jobs import JobOperations

        return self._op("jobs", JobOperations)

    @property
    def data(self) -> Any:
        from openaml.sdk._data import DataOperations

        return self._op("data", DataOperations)

    @property
    def components(self) -> Any:
        from openaml.sdk._components import ComponentOperations

        return self._op("components", ComponentOperations)

    @property
    def models(self) -> Any:
        from openaml.sdk._models import ModelOperations

        return self._op("models", ModelOperations)

    @property
    def environments(self) -> Any:
        from openaml.sdk._environments import EnvironmentOperations

        return self._op("environments", EnvironmentOperations)

    @property
    def compute(self) -> Any:
        from openaml.sdk._compute import ComputeOperations

        return self._op("compute", ComputeOperations)

    @property
    def datastores(self) -> Any:
        from openaml.sdk._datastores import DatastoreOperations

        return self._op("datastores", DatastoreOperations)

    @property
    def workspaces(self) -> Any:
        from openaml.sdk._workspaces import WorkspaceOperations

        return self._op("workspaces", WorkspaceOperations)

    @property
    def users(self) -> Any:
        """Workspace users and roles (openaml addition): create, list, get, delete, whoami."""
        from openaml.sdk._users import UserOperations

        return self._op("users", UserOperations)

    @property
    def online_endpoints(self) -> Any:
        from openaml.sdk._endpoints import OnlineEndpointOperations

        return self._op("online_endpoints", OnlineEndpointOperations)

    @property
    def online_deployments(self) -> Any:
        from openaml.sdk._endpoints import OnlineDeploymentOperations

        return self._op("online_deployments", OnlineDeploymentOperations)

    @property
    def batch_endpoints(self) -> Any:
        from openaml.sdk._batch_endpoints import BatchEndpointOperations

        return self._op("batch_endpoints", BatchEndpointOperations)

    @property
    def batch_deployments(self) -> Any:
        from openaml.sdk._batch_endpoints import BatchDeploymentOperations

        return self._op("batch_deployments", BatchDeploymentOperations)

    @property
    def schedules(self) -> Any:
        from openaml.sdk._schedules import ScheduleOperations

        return self._op("schedules", ScheduleOperations)

    @property
    def url(self) -> str:
        """Base URL of the workspace server."""
        return self._transport.url

    @property
    def mlflow_tracking_uri(self) -> str:
        return self._transport.url + "/mlflow"

    # ------------------------------------------------------------------ generic
    def create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        """Create or update any entity through its operation group, as ``azure.ai.ml.MLClient`` does.

        Jobs (command, sweep, pipeline), Data, Model, Environment, components (command, pipeline),
        Datastore, Compute, JobSchedule, ManagedOnlineEndpoint and ManagedOnlineDeployment. Long
        operations (compute, schedule, endpoint, deployment) are waited for and their result returned.

        Raises:
            ValidationError: an object of another type, naming it and the types handled.
        """
        from openaml.entities import Compute, Data, Datastore, Environment, Job, Model
        from openaml.entities._batch import BatchDeployment, BatchEndpoint, PipelineComponentBatchDeployment
        from openaml.entities._component import _ComponentBase
        from openaml.entities._endpoint import ManagedOnlineDeployment, ManagedOnlineEndpoint
        from openaml.entities._schedule import JobSchedule

        table: list[tuple[type | tuple[type, ...], Any]] = [
            (Job, lambda e: self.jobs.create_or_update(e, **kwargs)),
            (Data, lambda e: self.data.create_or_update(e, **kwargs)),
            (Model, lambda e: self.models.create_or_update(e, **kwargs)),
            (Environment, lambda e: self.environments.create_or_update(e, **kwargs)),
            (_ComponentBase, lambda e: self.components.create_or_update(e, **kwargs)),
            (Datastore, lambda e: self.datastores.create_or_update(e, **kwargs)),
            (Compute, lambda e: self.compute.begin_create_or_update(e, **kwargs).result()),
            (JobSchedule, lambda e: self.schedules.begin_create_or_update(e, **kwargs).result()),
            (ManagedOnlineEndpoint, lambda e: self.online_endpoints.begin_create_or_update(e, **kwargs).result()),
            (ManagedOnlineDeployment, lambda e: self.online_deployments.begin_create_or_update(e, **kwargs).result()),
            (BatchEndpoint, lambda e: self.batch_endpoints.begin_create_or_update(e, **kwargs).result()),
            ((BatchDeployment, PipelineComponentBatchDeployment),
             lambda e: self.batch_deployments.begin_create_or_update(e, **kwargs).result()),
        ]
        for cls, op in table:
            if isinstance(entity, cls):
                return op(entity)
        handled = ", ".join(", ".join(x.__name__ for x in c) if isinstance(c, tuple) else c.__name__
                            for c, _ in table)
        raise ValidationError(f"create_or_update does not handle {type(entity).__name__}; it takes one of: "
                              f"{handled} (and their subclasses)")

    def begin_create_or_update(self, entity: Any, **kwargs: Any) -> Poller:
        """As :meth:`create_or_update`, wrapped in a poller (``.result()``) as azure-ai-ml returns."""
        return Poller(self.create_or_update(entity, **kwargs))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> MLClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MLClient(workspace={self.workspace_name!r}, url={self._transport.url!r})"
