"""Pure mapping of Microsoft Sentinel's incident resource (ARM, api-version 2025-12-01).

Turns what the ARM API returns (``contracts/azure-sentinel-incidents-2025-12-01.swagger.json``),
or the automation-rule envelope a playbook forwards (``{"object": <incident>, ...}``), into
Warden's ``Incident``; builds the body that writes changes back (``incident_put_body``);
reads an incident's comments, alerts and entities. Nothing here does I/O.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field, ValidationError

from connectors.sentinel.errors import InvalidIncidentChange
from core.errors import InvalidPayload
from core.json_body import json_value
from core.models import Incident, IncidentStatus, Owner, Severity

INCIDENT_TYPE = "Microsoft.SecurityInsights/incidents"

XDR_PROVIDERS = frozenset({"microsoft xdr", "microsoft 365 defender", "microsoft defender xdr"})
"""``providerName`` values of incidents Defender XDR raised (their ``providerIncidentId`` is the
Defender XDR incident id, the one Graph's ``security/incidents`` answers)."""


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
    providerIncidentId: str | None = None  # noqa: N815
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
    return _to_incident(parsed)


def _to_incident(parsed: _Resource) -> Incident:
    """The incident a validated resource describes; ``InvalidPayload`` when it names another
    resource type."""
    if parsed.type is not None and parsed.type.lower() != INCIDENT_TYPE.lower():
        raise InvalidPayload(f"type: expected {INCIDENT_TYPE}", field="type")
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
        xdr_id=_xdr_id(props),
    )


def _xdr_id(props: _Properties) -> str | None:
    """The Defender XDR incident id of an incident Defender XDR raised, else ``None``."""
    if (props.providerName or "").strip().lower() not in XDR_PROVIDERS:
        return None
    return (props.providerIncidentId or "").strip() or None


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


def incident_from_webhook_json(raw: bytes) -> Incident:
    """The incident in a webhook's raw JSON body (``incident_from_webhook``'s answers).

    A bare incident resource, the common case, is validated straight from the bytes in one
    pass; anything else (an envelope, or a body that fails) goes the general way, which names
    the field at fault. ``json.JSONDecodeError`` when the body is not JSON.
    """
    try:
        parsed = _Resource.model_validate_json(raw)
    except ValidationError:
        return incident_from_webhook(json_value(raw))
    return _to_incident(parsed)


# Writing changes back (Incidents_CreateOrUpdate).

Classification = Literal["Undetermined", "TruePositive", "BenignPositive", "FalsePositive"]
"""Why an incident was closed (the swagger's ``IncidentClassification``)."""

ClassificationReason = Literal[
    "SuspiciousActivity", "SuspiciousButExpected", "IncorrectAlertLogic", "InaccurateData"
]
"""The detail of a classification (``IncidentClassificationReason``)."""

# The pairs Sentinel offers when closing; true and benign positives need their reason.
_REASONS: dict[str, frozenset[str]] = {
    "Undetermined": frozenset(),
    "TruePositive": frozenset({"SuspiciousActivity"}),
    "BenignPositive": frozenset({"SuspiciousButExpected"}),
    "FalsePositive": frozenset({"IncorrectAlertLogic", "InaccurateData"}),
}
_NEEDS_REASON = frozenset({"TruePositive", "BenignPositive"})
_CLASSIFYING = ("classification", "classificationReason", "classificationComment")
# The IncidentProperties the swagger does not mark readOnly: what a PUT carries back.
_WRITABLE = ("title", "description", "severity", "status", "owner", "labels", *_CLASSIFYING)
_WRITABLE_TIMES = ("firstActivityTimeUtc", "lastActivityTimeUtc")
_OWNER_FIELDS = ("objectId", "userPrincipalName", "email", "assignedTo", "ownerType")


class IncidentChanges(BaseModel):
    """What a responder asks to change; ``None`` (or empty) leaves a property as it is.

    ``owner=Owner()`` (no field set) unassigns. Classification fields apply when the
    incident ends up closed; a new ``classification`` replaces the old reason and comment.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity | None = None
    status: IncidentStatus | None = None
    owner: Owner | None = None
    classification: Classification | None = None
    classification_reason: ClassificationReason | None = None
    classification_comment: str | None = None
    labels_to_add: tuple[str, ...] = ()


def _owner_body(owner: Owner) -> dict[str, Any]:
    """An ``IncidentOwnerInfo`` for ``owner``; ``{}`` (nobody) when no field is set."""
    if owner.object_id is not None:
        try:
            uuid.UUID(owner.object_id)
        except ValueError:
            raise InvalidIncidentChange("The owner's object id must be a GUID.") from None
    fields = {
        "objectId": owner.object_id,
        "userPrincipalName": owner.upn,
        "email": owner.email,
        "assignedTo": owner.name,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _from_incident(incident: Incident) -> dict[str, Any]:
    """The writable properties an ``Incident`` still knows (no activity times or reason)."""
    properties = {
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "owner": _owner_body(incident.owner),
        "labels": [{"labelName": label} for label in incident.labels],
        "classification": incident.classification,
    }
    return {key: value for key, value in properties.items() if value is not None}


def _from_resource(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The writable properties of a raw resource, without readOnly parts and nulls."""
    source = resource.get("properties")
    if not isinstance(source, Mapping):
        raise InvalidPayload("properties: an incident resource must have properties", field="")
    kept = (*_WRITABLE, *_WRITABLE_TIMES)
    properties = {key: copy.deepcopy(source[key]) for key in kept if source.get(key) is not None}
    owner = properties.get("owner")
    if isinstance(owner, Mapping):
        properties["owner"] = {k: owner[k] for k in _OWNER_FIELDS if owner.get(k) is not None}
    labels = properties.get("labels")
    if isinstance(labels, list):  # labelType is readOnly: Sentinel keeps it
        names = [label.get("labelName") for label in labels if isinstance(label, Mapping)]
        properties["labels"] = [{"labelName": name} for name in names if name]
    return properties


def _apply(properties: dict[str, Any], changes: IncidentChanges) -> None:
    """Write the changes into the properties (classification rules are checked after)."""
    if changes.severity is not None:
        properties["severity"] = changes.severity.value
    if changes.status is not None:
        properties["status"] = changes.status.value
    if changes.owner is not None:
        properties["owner"] = _owner_body(changes.owner)
    labels = list(properties.get("labels", []))
    known = {str(label.get("labelName", "")).lower() for label in labels}
    for name in (label.strip() for label in changes.labels_to_add):
        if name and name.lower() not in known:
            labels.append({"labelName": name})
            known.add(name.lower())
    properties["labels"] = labels
    if changes.classification is not None:
        for key in _CLASSIFYING:
            properties.pop(key, None)
    given = (changes.classification, changes.classification_reason, changes.classification_comment)
    properties.update({k: v for k, v in zip(_CLASSIFYING, given, strict=True) if v is not None})


def _check_classification(properties: dict[str, Any], changes: IncidentChanges) -> None:
    """Raise ``InvalidIncidentChange`` where Sentinel would refuse the classification."""
    if properties.get("status") != IncidentStatus.CLOSED.value:
        asked = (changes.classification, changes.classification_reason)
        if any(value is not None for value in asked) or changes.classification_comment:
            raise InvalidIncidentChange("A classification can only be given when closing.")
        for key in _CLASSIFYING:  # reopening clears the old verdict
            properties.pop(key, None)
        return
    classification = properties.get("classification")
    reason = properties.get("classificationReason")
    if not classification:
        raise InvalidIncidentChange("Closing an incident needs a classification.")
    if classification in _NEEDS_REASON and not reason:
        raise InvalidIncidentChange(f"Closing as {classification} needs a classification reason.")
    allowed = _REASONS.get(str(classification))
    if reason and allowed is not None and reason not in allowed:
        raise InvalidIncidentChange(f"{reason} is not a reason for closing as {classification}.")


def incident_put_body(
    current: Incident | Mapping[str, Any], changes: IncidentChanges
) -> dict[str, Any]:
    """The Incidents_CreateOrUpdate body that applies ``changes`` to ``current``.

    ``current`` is the raw resource Sentinel answered (faithful) or an ``Incident`` (its
    activity times, classification reason and comment and owner type are lost). The body
    carries ``current``'s etag: Sentinel refuses it (409) if the incident changed since.
    ``InvalidIncidentChange``, before anything is sent, for what Sentinel would refuse: no
    etag, closing without a classification (or with a reason that does not fit it), a
    classification on an incident that stays open.
    """
    if isinstance(current, Incident):
        etag, properties = current.etag, _from_incident(current)
    else:
        etag, properties = str(current.get("etag") or ""), _from_resource(current)
    if not etag:
        raise InvalidIncidentChange("The incident has no etag; fetch it again before changing it.")
    _apply(properties, changes)
    _check_classification(properties, changes)
    return {"etag": etag, "properties": properties}


# Reading an incident's comments, alerts and entities (wire names as aliases; times as sent).


_RECORD = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)
_M = TypeVar("_M", bound=BaseModel)


def _in_properties(*names: str) -> AliasChoices:
    """Read a field from the first of ``properties/<name>`` that is present."""
    return AliasChoices(*(AliasPath("properties", name) for name in names))


class Comment(BaseModel):
    """A comment on an incident (``IncidentComment``) and who wrote it (its ClientInfo)."""

    model_config = _RECORD

    name: str = Field(min_length=1)
    message: str = Field(validation_alias=_in_properties("message"))
    created: datetime | None = Field(None, validation_alias=_in_properties("createdTimeUtc"))
    author: str | None = Field(None, validation_alias=AliasPath("properties", "author", "name"))
    author_object_id: str | None = Field(
        None, validation_alias=AliasPath("properties", "author", "objectId")
    )


class Alert(BaseModel):
    """An alert of an incident (a ``SecurityAlert`` entity), as a card lists it."""

    model_config = _RECORD

    name: str = Field(min_length=1)
    display_name: str = Field(
        validation_alias=AliasChoices(
            AliasPath("properties", "alertDisplayName"),
            AliasPath("properties", "friendlyName"),
            "name",
        )
    )
    severity: Severity | None = Field(None, validation_alias=_in_properties("severity"))
    status: str | None = Field(None, validation_alias=_in_properties("status"))
    time: datetime | None = Field(
        None, validation_alias=_in_properties("timeGenerated", "startTimeUtc")
    )
    product: str | None = Field(None, validation_alias=_in_properties("productName"))


class Entity(BaseModel):
    """An entity of an incident (account, host, IP, ...): its kind and a readable name."""

    model_config = _RECORD

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    friendly_name: str | None = Field(None, validation_alias=_in_properties("friendlyName"))
    resource_id: str | None = Field(
        None,
        validation_alias=_in_properties("resourceId", "azureID"),
        description="The Azure resource it is (AzureResource) or runs on (a Host's azureID).",
    )


def _record(model: type[_M], value: Any, what: str) -> _M:
    """Validate a wire object as ``model``; ``InvalidPayload`` names the first bad field."""
    if not isinstance(value, dict):
        raise InvalidPayload(f"{what} must be a JSON object", field="")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidPayload(f"{what}: {field}: {first['msg']}", field=field) from None


def comment_from_resource(resource: Any) -> Comment:
    """The ``Comment`` an ``IncidentComment`` resource describes."""
    return _record(Comment, resource, "an incident comment")


def alert_from_resource(resource: Any) -> Alert:
    """The ``Alert`` a ``SecurityAlert`` entity of Incidents_ListAlerts describes."""
    return _record(Alert, resource, "an incident alert")


def entity_from_resource(resource: Any) -> Entity:
    """The ``Entity`` an item of Incidents_ListEntities describes (kind, friendly name)."""
    return _record(Entity, resource, "an incident entity")
