"""Datastore entities and their credential classes, named and shaped as ``azure.ai.ml.entities``.

Azure ML v2 datastore YAML (``azureBlob``, ``azureFile``, ``azureDataLakeGen1``,
``azureDataLakeGen2`` schemas) loads unchanged: ``credentials`` is a mapping whose keys say which
credential it is (``account_key``; ``sas_token``; ``tenant_id``/``client_id``/``client_secret``;
``certificate``/``thumbprint``; empty or absent for identity-based access). ``local``, ``s3`` (an
openaml extension), ``azure_blob`` and ``fsspec`` datastores hold files here; the other Azure types
are kept as metadata (spec section 9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from openaml.entities._base import Entity, load_entity
from openaml.errors import ValidationError

__all__ = [
    "AccountKeyConfiguration",
    "AzureBlobDatastore",
    "AzureDataLakeGen1Datastore",
    "AzureDataLakeGen2Datastore",
    "AzureFileDatastore",
    "CertificateConfiguration",
    "Datastore",
    "DatastoreCredentials",
    "NoneCredentialConfiguration",
    "S3CredentialConfiguration",
    "S3Datastore",
    "SasTokenConfiguration",
    "ServicePrincipalConfiguration",
    "datastore_class",
    "datastore_fields_class",
    "load_datastore",
]

AZURE_STORAGE_ENDPOINT = "core.windows.net"  # azure-ai-ml's default for the public cloud
AZURE_AUTHORITY_URL = "https://login.microsoftonline.com"


class _Credential(Entity):
    # fields holding secrets: stored, never returned by the server (Azure's GET omits them too)
    _secret_fields: ClassVar[tuple[str, ...]] = ()


class AccountKeyConfiguration(_Credential):
    """Storage account key (``credentials: {account_key: ...}``)."""

    type: Literal["account_key"] = "account_key"
    account_key: str | None = None
    _secret_fields: ClassVar[tuple[str, ...]] = ("account_key",)


class SasTokenConfiguration(_Credential):
    """Shared access signature (``credentials: {sas_token: ...}``)."""

    type: Literal["sas"] = "sas"
    sas_token: str | None = None
    _secret_fields: ClassVar[tuple[str, ...]] = ("sas_token",)


class ServicePrincipalConfiguration(_Credential):
    """Service principal: ``tenant_id``, ``client_id``, ``client_secret`` (+ ``authority_url``,
    ``resource_url``), as azure-ai-ml's class of that name."""

    type: Literal["service_principal"] = "service_principal"
    client_secret: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    authority_url: str = AZURE_AUTHORITY_URL
    resource_url: str | None = None
    _secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)


class CertificateConfiguration(_Credential):
    """Service principal with a certificate: ``certificate``, ``thumbprint`` and the tenant fields."""

    type: Literal["certificate"] = "certificate"
    certificate: str | None = None
    thumbprint: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    authority_url: str = AZURE_AUTHORITY_URL
    resource_url: str | None = None
    _secret_fields: ClassVar[tuple[str, ...]] = ("certificate",)


class S3CredentialConfiguration(_Credential):
    """S3 access key (openaml extension, ``type: s3`` datastores): ``credentials: {access_key_id: ...,
    secret_access_key: ...}`` (+ ``session_token`` for temporary keys)."""

    type: Literal["access_key"] = "access_key"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    _secret_fields: ClassVar[tuple[str, ...]] = ("secret_access_key", "session_token")


class NoneCredentialConfiguration(_Credential):
    """No stored secret: identity-based access (an empty ``credentials`` mapping)."""

    type: Literal["none"] = "none"


DatastoreCredentials = (AccountKeyConfiguration | SasTokenConfiguration | ServicePrincipalConfiguration
                        | CertificateConfiguration | S3CredentialConfiguration | NoneCredentialConfiguration)

_CREDENTIAL_TYPES: dict[str, type[_Credential]] = {
    "account_key": AccountKeyConfiguration, "sas": SasTokenConfiguration,
    "service_principal": ServicePrincipalConfiguration, "certificate": CertificateConfiguration,
    "access_key": S3CredentialConfiguration, "none": NoneCredentialConfiguration,
}
# Azure's REST spelling of the credential types, accepted on input
_TYPE_ALIASES = {"accountkey": "account_key", "sas_token": "sas", "servicePrincipal": "service_principal",
                 "serviceprincipal": "service_principal", "Certificate": "certificate", "None": "none"}


def _credential_type(v: dict[str, Any]) -> str:
    """Which credential a YAML mapping is: its ``type`` if given, else the keys it has."""
    t = v.get("type")
    if isinstance(t, str):
        return _TYPE_ALIASES.get(t, _TYPE_ALIASES.get(t.lower(), t.lower()))
    if "account_key" in v:
        return "account_key"
    if "sas_token" in v:
        return "sas"
    if "access_key_id" in v or "secret_access_key" in v:
        return "access_key"
    if "certificate" in v or "thumbprint" in v:
        return "certificate"
    if "client_secret" in v or "client_id" in v or "tenant_id" in v:
        return "service_principal"
    return "none" if not v else "unknown"


_ANY_CREDENTIAL_KEYS = ("one of: account_key; sas_token; tenant_id + client_id + client_secret; certificate + "
                        "thumbprint (+ tenant_id, client_id); access_key_id + secret_access_key (s3); or an empty "
                        "mapping for identity-based access")
#: what a datastore type's ``credentials`` mapping holds (its credential classes' fields), for errors
_CREDENTIAL_KEYS = {
    "s3": ("a mapping with access_key_id and secret_access_key (+ session_token for temporary keys), or no "
           "credentials for boto's default chain"),
    "azure_blob": "a mapping with account_key, or with sas_token, or an empty mapping for identity-based access",
    "azure_file": "a mapping with account_key, or with sas_token, or an empty mapping for identity-based access",
    "azure_data_lake_gen1": ("a mapping with tenant_id, client_id and client_secret, or with certificate and "
                             "thumbprint, or an empty mapping for identity-based access"),
    "azure_data_lake_gen2": ("a mapping with tenant_id, client_id and client_secret, or with certificate and "
                             "thumbprint, or an empty mapping for identity-based access"),
}


def credentials_from(v: Any) -> Any:
    """A credential object from a YAML/JSON mapping (left as is when it is one already).

    Raises:
        ValidationError: a mapping whose keys match no credential kind (the kinds are listed).
    """
    if not isinstance(v, dict):
        return v
    kind = _credential_type(v)
    cls = _CREDENTIAL_TYPES.get(kind)
    if cls is None:
        raise ValueError(
            f"credentials {sorted(v)} match no credential kind; give one of: account_key; sas_token; "
            "tenant_id + client_id + client_secret; certificate + thumbprint (+ tenant_id, client_id); "
            "access_key_id + secret_access_key (s3); or an empty mapping for identity-based access")
    body = {k: x for k, x in v.items() if k != "type"}
    return cls.model_validate(body)


def public_credentials(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored credentials without their secrets (what ``show`` returns, as Azure's GET does)."""
    if not v:
        return None
    cls = _CREDENTIAL_TYPES.get(_credential_type(v))
    secret = cls._secret_fields if cls is not None else tuple(v)
    return {k: x for k, x in v.items() if k not in secret and x is not None}


class Datastore(Entity):
    """A datastore. ``local`` (a folder) and ``fsspec`` URLs hold files; Azure types are metadata.

    Prefer the typed subclasses (:class:`AzureBlobDatastore`, ...) as in azure-ai-ml; this class
    accepts every field of every type so one YAML loader reads them all.
    """

    name: str
    type: Literal["local", "fsspec", "s3", "azure_blob", "azure_file", "azure_data_lake_gen1",
                  "azure_data_lake_gen2", "one_lake", "hdfs"] = "local"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    path: str | None = None
    url: str | None = None
    account_name: str | None = None
    container_name: str | None = None
    file_share_name: str | None = None
    filesystem: str | None = None
    store_name: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    credentials: DatastoreCredentials | None = None
    is_default: bool = False
    id: str | None = None

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and not isinstance(v, (dict, _Credential)):  # one error, not one per credential class
            type_ = info.data.get("type")
            keys = _CREDENTIAL_KEYS.get(type_ if isinstance(type_, str) else "", _ANY_CREDENTIAL_KEYS)
            raise ValueError(f"credentials must be a mapping, not a {type(v).__name__}; give {keys}")
        return credentials_from(v)


class _LocalDatastoreFields(Entity):
    """The fields a ``local`` datastore has (a folder: ``path``): checked before :class:`Datastore`, which
    takes every type's fields, so that an unknown field or another type's (``bucket``) is named with the
    local type's fields only (:func:`datastore_fields_class`)."""

    name: str
    type: Literal["local"] = "local"
    description: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    path: Any = None
    is_default: Any = False
    id: Any = None
    _server_fields: ClassVar[tuple[str, ...]] = ("id",)


def datastore_fields_class(type_: Any) -> type[Entity] | None:
    """The class listing exactly the fields of datastore type ``type_`` when :class:`Datastore` (all
    types' fields) stands for it: ``local`` (the default type); None for the others."""
    return _LocalDatastoreFields if type_ in (None, "local") else None


class AzureBlobDatastore(Datastore):
    """Azure Blob container: ``account_name``, ``container_name``; credentials account key or SAS."""

    type: Literal["azure_blob"] = "azure_blob"  # type: ignore[assignment]
    account_name: str  # type: ignore[assignment]
    container_name: str  # type: ignore[assignment]
    endpoint: str | None = AZURE_STORAGE_ENDPOINT
    protocol: str | None = "https"


class S3Datastore(Datastore):
    """An S3 bucket (openaml extension): ``bucket``; ``endpoint_url`` for an S3-compatible server
    (MinIO, Ceph, a local S3 API), ``region``; credentials ``access_key_id`` + ``secret_access_key``
    (:class:`S3CredentialConfiguration`), or none for boto's default chain (environment,
    ``~/.aws``, instance role) of the server and the job's runner."""

    type: Literal["s3"] = "s3"  # type: ignore[assignment]
    bucket: str  # type: ignore[assignment]


class AzureFileDatastore(Datastore):
    """Azure file share: ``account_name``, ``file_share_name``; credentials account key or SAS."""

    type: Literal["azure_file"] = "azure_file"  # type: ignore[assignment]
    account_name: str  # type: ignore[assignment]
    file_share_name: str  # type: ignore[assignment]
    endpoint: str | None = AZURE_STORAGE_ENDPOINT
    protocol: str | None = "https"


class AzureDataLakeGen1Datastore(Datastore):
    """Azure Data Lake Gen1: ``store_name``; credentials service principal or certificate."""

    type: Literal["azure_data_lake_gen1"] = "azure_data_lake_gen1"  # type: ignore[assignment]
    store_name: str  # type: ignore[assignment]


class AzureDataLakeGen2Datastore(Datastore):
    """Azure Data Lake Gen2: ``account_name``, ``filesystem``; credentials service principal or
    certificate."""

    type: Literal["azure_data_lake_gen2"] = "azure_data_lake_gen2"  # type: ignore[assignment]
    account_name: str  # type: ignore[assignment]
    filesystem: str  # type: ignore[assignment]
    endpoint: str | None = AZURE_STORAGE_ENDPOINT
    protocol: str | None = "https"


_CLASSES: dict[str, type[Datastore]] = {
    "s3": S3Datastore, "azure_blob": AzureBlobDatastore, "azure_file": AzureFileDatastore,
    "azure_data_lake_gen1": AzureDataLakeGen1Datastore, "azure_data_lake_gen2": AzureDataLakeGen2Datastore,
}


def datastore_class(type_: str | None) -> type[Datastore]:
    """The entity class of a datastore type (``Datastore`` for local, fsspec and the others)."""
    return _CLASSES.get(type_ or "", Datastore)


def load_datastore(source: str | Path | None = None, *, data: dict[str, Any] | None = None,
                   params_override: list[Any] | None = None) -> Datastore:
    """Load a datastore YAML into the class of its ``type`` (as azure-ai-ml's ``load_datastore``).

    Raises:
        ValidationError: file, line and field of what is missing or wrong for that type.
    """
    from openaml._yaml import apply_set_overrides, load_yaml_with_lines

    if source is not None:
        raw, _ = load_yaml_with_lines(source)
    else:
        raw = dict(data or {})
    probe = dict(raw)
    apply_set_overrides(probe, params_override)
    type_ = probe.get("type")
    if type_ is not None and not isinstance(type_, str):
        raise ValidationError(f"datastore field 'type' must be a string, got {type_!r}")
    fields = datastore_fields_class(type_)
    if fields is not None:  # unknown fields named with this type's fields, not every datastore type's
        load_entity(fields, source, data=None if source is not None else raw, params_override=params_override,
                    kind=f"{type_ or 'local'} datastore")
    return load_entity(datastore_class(type_), source, data=None if source is not None else raw,
                       params_override=params_override, kind="datastore")
