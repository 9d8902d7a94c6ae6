"""Entities: typed value objects shared by the server, the SDK and the CLI.

Names and constructor arguments follow ``azure.ai.ml.entities``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openaml.entities._assets import Data, Model
    from openaml.entities._base import Entity, load_entity
    from openaml.entities._batch import (
        BatchDeployment,
        BatchDeploymentOutputAction,
        BatchDeploymentSettings,
        BatchEndpoint,
        BatchEndpointDefaults,
        BatchRetrySettings,
        ModelBatchDeployment,
        ModelBatchDeploymentSettings,
        PipelineComponentBatchDeployment,
    )
    from openaml.entities._component import CommandComponent, PipelineComponent
    from openaml.entities._compute import AmlCompute, Compute, ComputeInstance, RayCompute, RayResources
    from openaml.entities._datastore import (
        AccountKeyConfiguration,
        AzureBlobDatastore,
        AzureDataLakeGen1Datastore,
        AzureDataLakeGen2Datastore,
        AzureFileDatastore,
        CertificateConfiguration,
        Datastore,
        NoneCredentialConfiguration,
        S3CredentialConfiguration,
        S3Datastore,
        SasTokenConfiguration,
        ServicePrincipalConfiguration,
    )
    from openaml.entities._distribution import (
        MpiDistribution,
        PyTorchDistribution,
        RayDistribution,
        TensorFlowDistribution,
    )
    from openaml.entities._endpoint import (
        CodeConfiguration,
        EndpointAuthKeys,
        EndpointAuthToken,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        MicroBatching,
        OnlineRequestSettings,
        ProbeSettings,
    )
    from openaml.entities._environment import BuildContext, Environment
    from openaml.entities._io import Input, Output
    from openaml.entities._job import CommandJob, CommandJobLimits, GenericJob, Job, JobResources, JobService
    from openaml.entities._pipeline import PipelineJob, PipelineJobSettings
    from openaml.entities._schedule import CronTrigger, JobSchedule, RecurrencePattern, RecurrenceTrigger
    from openaml.entities._workspace import Workspace

# name -> module: entities are imported on first use, so that reading one job does not build
# every entity module (CLI start-up); ``from openaml.entities import X`` works as before
_EXPORTS: dict[str, str] = {
    "Data": "openaml.entities._assets",
    "Model": "openaml.entities._assets",
    "Entity": "openaml.entities._base",
    "load_entity": "openaml.entities._base",
    "AmlCompute": "openaml.entities._compute",
    "Compute": "openaml.entities._compute",
    "ComputeInstance": "openaml.entities._compute",
    **{n: "openaml.entities._batch" for n in (
        "BatchDeployment", "BatchDeploymentOutputAction", "BatchDeploymentSettings", "BatchEndpoint",
        "BatchEndpointDefaults", "BatchRetrySettings", "ModelBatchDeployment", "ModelBatchDeploymentSettings",
        "PipelineComponentBatchDeployment")},
    "RayCompute": "openaml.entities._compute",
    "RayResources": "openaml.entities._compute",
    "CodeConfiguration": "openaml.entities._endpoint",
    "EndpointAuthKeys": "openaml.entities._endpoint",
    "EndpointAuthToken": "openaml.entities._endpoint",
    "ManagedOnlineDeployment": "openaml.entities._endpoint",
    "ManagedOnlineEndpoint": "openaml.entities._endpoint",
    "MicroBatching": "openaml.entities._endpoint",
    "OnlineRequestSettings": "openaml.entities._endpoint",
    "ProbeSettings": "openaml.entities._endpoint",
    "BuildContext": "openaml.entities._environment",
    "Environment": "openaml.entities._environment",
    "Input": "openaml.entities._io",
    "Output": "openaml.entities._io",
    "CommandJob": "openaml.entities._job",
    "CommandJobLimits": "openaml.entities._job",
    "Job": "openaml.entities._job",
    "GenericJob": "openaml.entities._job",
    "JobResources": "openaml.entities._job",
    "JobService": "openaml.entities._job",
    "CronTrigger": "openaml.entities._schedule",
    "JobSchedule": "openaml.entities._schedule",
    "RecurrencePattern": "openaml.entities._schedule",
    "RecurrenceTrigger": "openaml.entities._schedule",
    "PipelineJob": "openaml.entities._pipeline",
    "PipelineJobSettings": "openaml.entities._pipeline",
    "CommandComponent": "openaml.entities._component",
    "PipelineComponent": "openaml.entities._component",
    **{n: "openaml.entities._datastore" for n in (
        "AccountKeyConfiguration", "AzureBlobDatastore", "AzureDataLakeGen1Datastore", "AzureDataLakeGen2Datastore",
        "AzureFileDatastore", "CertificateConfiguration", "Datastore", "NoneCredentialConfiguration",
        "SasTokenConfiguration", "ServicePrincipalConfiguration", "S3CredentialConfiguration", "S3Datastore")},
    "Workspace": "openaml.entities._workspace",
    **{n: "openaml.entities._distribution" for n in (
        "MpiDistribution", "PyTorchDistribution", "RayDistribution", "TensorFlowDistribution")},
}

__all__ = [
    "AccountKeyConfiguration",
    "AmlCompute",
    "AzureBlobDatastore",
    "AzureDataLakeGen1Datastore",
    "AzureDataLakeGen2Datastore",
    "AzureFileDatastore",
    "BatchDeployment",
    "BatchDeploymentOutputAction",
    "BatchDeploymentSettings",
    "BatchEndpoint",
    "BatchEndpointDefaults",
    "BatchRetrySettings",
    "BuildContext",
    "CertificateConfiguration",
    "CodeConfiguration",
    "CommandComponent",
    "CommandJob",
    "CommandJobLimits",
    "Compute",
    "ComputeInstance",
    "RayCompute",
    "RayResources",
    "CronTrigger",
    "Data",
    "Datastore",
    "EndpointAuthKeys",
    "EndpointAuthToken",
    "Entity",
    "Environment",
    "Input",
    "Job",
    "GenericJob",
    "JobResources",
    "JobSchedule",
    "JobService",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "MicroBatching",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "MpiDistribution",
    "NoneCredentialConfiguration",
    "OnlineRequestSettings",
    "Output",
    "PipelineComponent",
    "PipelineComponentBatchDeployment",
    "PipelineJob",
    "PipelineJobSettings",
    "ProbeSettings",
    "PyTorchDistribution",
    "RayDistribution",
    "RecurrencePattern",
    "RecurrenceTrigger",
    "S3CredentialConfiguration",
    "S3Datastore",
    "SasTokenConfiguration",
    "ServicePrincipalConfiguration",
    "TensorFlowDistribution",
    "Workspace",
    "load_entity",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openaml.entities' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
