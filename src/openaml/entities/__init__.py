"""Entities: typed value objects shared by the server, the SDK and the CLI.

Names and constructor arguments follow ``azure.ai.ml.entities``.
"""

from __future__ import annotations

from openaml.entities._assets import Data, Model
from openaml.entities._base import Entity, load_entity
from openaml.entities._component import CommandComponent, PipelineComponent
from openaml.entities._compute import AmlCompute, Compute, ComputeInstance
from openaml.entities._datastore import (
    AccountKeyConfiguration,
    AzureBlobDatastore,
    AzureDataLakeGen1Datastore,
    AzureDataLakeGen2Datastore,
    AzureFileDatastore,
    CertificateConfiguration,
    Datastore,
    NoneCredentialConfiguration,
    SasTokenConfiguration,
    ServicePrincipalConfiguration,
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
from openaml.entities._job import CommandJob, CommandJobLimits, Job, JobResources, JobService
from openaml.entities._schedule import CronTrigger, JobSchedule, RecurrencePattern, RecurrenceTrigger
from openaml.entities._workspace import Workspace

__all__ = [
    "AccountKeyConfiguration",
    "AmlCompute",
    "AzureBlobDatastore",
    "AzureDataLakeGen1Datastore",
    "AzureDataLakeGen2Datastore",
    "AzureFileDatastore",
    "BuildContext",
    "CertificateConfiguration",
    "CodeConfiguration",
    "CommandComponent",
    "CommandJob",
    "CommandJobLimits",
    "Compute",
    "ComputeInstance",
    "CronTrigger",
    "Data",
    "Datastore",
    "EndpointAuthKeys",
    "EndpointAuthToken",
    "Entity",
    "Environment",
    "Input",
    "Job",
    "JobResources",
    "JobSchedule",
    "JobService",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "MicroBatching",
    "Model",
    "NoneCredentialConfiguration",
    "OnlineRequestSettings",
    "Output",
    "PipelineComponent",
    "ProbeSettings",
    "RecurrencePattern",
    "RecurrenceTrigger",
    "SasTokenConfiguration",
    "ServicePrincipalConfiguration",
    "Workspace",
    "load_entity",
]
