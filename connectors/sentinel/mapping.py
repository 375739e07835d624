"""Pure mapping of Microsoft Sentinel's incident resource (ARM, api-version 2025-12-01).

Turns what the ARM API returns (``contracts/azure-sentinel-incidents-2025-12-01.swagger.json``),
or the automation-rule envelope a playbook forwards (``{"object": <incident>, ...}``), into
Warden's ``Incident``. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidPayload
from core.models import Incident, IncidentStatus, Owner, Severity

INCIDENT_TYPE = "Microsoft.SecurityInsights/incidents"


class _Owner(BaseModel):
    model_config = ConfigDict(extra="allow")

    objectId: str | None = None  # noqa: N815 - the wire's own names
    email: str | None = None
    userPrincipalName: str | None = None  # noqa: N815
    assignedTo: str | None = None  # noqa: N815


class _Label(BaseModel):
    model_config = ConfigDict(extra="allow")

    labelName: str  # noqa: N815


class _AdditionalData(BaseModel):
    model_config = ConfigDict(extra="allow")

    alertsCount: int = 0  # noqa: N815
    alertProductNames: list[str] = Field(default_factory=list)  # noqa: N815
    tactics: list[str] = Field(default_factory=list)
    providerIncidentUrl: str | None = None  # noqa: N815


class _Properties(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str = Field(min_length=1)
    severity: Severity
    status: IncidentStatus
    lastModifiedTimeUtc: datetime  # noqa: N815
    createdTimeUtc: datetime | None = None  # noqa: N815
    description: str | None = None
    owner: _Owner | None = None
    classification: str | None = None
    incidentUrl: str | None = None  # noqa: N815
    incidentNumber: int | None = None  # noqa: N815
    labels: list[_Label] = Field(default_factory=list)
    providerName: str | None = None  # noqa: N815
    additionalData: _AdditionalData | None = None  # noqa: N815


class _Resource(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: str | None = None
    etag: str | None = None
    properties: _Properties


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _workspace(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "workspaces" in lowered:
        index = lowered.index("workspaces")
        if index + 1 < len(parts):
            return parts[index + 1]
    return None


def incident_from_resource(resource: Any) -> Incident:
    """The ``Incident`` an ARM incident resource describes; ``InvalidPayload`` names the field."""
    if not isinstance(resource, dict):
        raise InvalidPayload("an incident resource must be a JSON object", field="")
    try:
        parsed = _Resource.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidPayload(f"{field}: {first['msg']}", field=field) from None
    if parsed.type is not None and parsed.type.lower() != INCIDENT_TYPE.lower():
        raise InvalidPayload(f"type: expected {INCIDENT_TYPE}", field="type")
    return _to_incident(parsed)


def _to_incident(parsed: _Resource) -> Incident:
    props = parsed.properties
    extra = props.additionalData or _AdditionalData()
    owner = props.owner or _Owner()
    modified = _utc(props.lastModifiedTimeUtc)
    assert modified is not None
    return Incident(
        key=parsed.id.lower(),
        name=parsed.name,
        number=props.incidentNumber,
        title=props.title,
        description=props.description,
        severity=props.severity,
        status=props.status,
        owner=Owner(
            object_id=owner.objectId,
            name=owner.assignedTo,
            email=owner.email,
            upn=owner.userPrincipalName,
        ),
        classification=props.classification,
        created=_utc(props.createdTimeUtc),
        last_modified=modified,
        etag=parsed.etag or "",
        alert_count=extra.alertsCount,
        tactics=tuple(extra.tactics),
        products=tuple(extra.alertProductNames),
        labels=tuple(label.labelName for label in props.labels),
        incident_url=props.incidentUrl,
        provider_name=props.providerName,
        provider_url=extra.providerIncidentUrl,
        workspace=_workspace(parsed.id),
    )


def incident_from_webhook(body: Any) -> Incident:
    """The incident in a webhook body: a bare incident resource or a playbook's envelope.

    The envelope is the Sentinel incident trigger's shape, ``{"object": <resource>,
    "workspaceInfo": {...}, ...}``; field names in errors are relative to the body.
    """
    if isinstance(body, dict) and isinstance(body.get("object"), dict) and "properties" not in body:
        try:
            return incident_from_resource(body["object"])
        except InvalidPayload as exc:
            field = f"object.{exc.field}" if exc.field else "object"
            raise InvalidPayload(f"object.{exc}", field=field) from None
    return incident_from_resource(body)
