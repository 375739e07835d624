"""ARM's ``DeploymentExtended`` and ``DeploymentOperation`` as Warden's ``Deployment`` (pure).

The resources a deployment touched are its ``properties.outputResources`` and, when the
operations were read, each operation's ``properties.targetResource.id`` (a failed
deployment lists no output resources; its operations still name what it tried). Ids are
lower-cased: ARM ids are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from core.deployments import Deployment, resource_group_of
from core.errors import InvalidPayload


def _time(text: Any) -> datetime:
    """An ARM timestamp (seven fractional digits, ``Z``) as an aware UTC datetime."""
    if not isinstance(text, str) or not text:
        raise InvalidPayload("the deployment has no timestamp", field="properties.timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(f"not a time: {text!r}", field="properties.timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def operation_targets(operations: Iterable[Any]) -> list[str]:
    """The resource ids the operations touched (lower case, each once, in order)."""
    found: dict[str, None] = {}
    for operation in operations:
        props = operation.get("properties") if isinstance(operation, Mapping) else None
        target = props.get("targetResource") if isinstance(props, Mapping) else None
        target_id = target.get("id") if isinstance(target, Mapping) else None
        if isinstance(target_id, str) and target_id.startswith("/subscriptions/"):
            found.setdefault(target_id.lower())
    return list(found)


def deployment_from_resource(resource: Any, operations: Iterable[Any] | None = None) -> Deployment:
    """The ``Deployment`` of one ``DeploymentExtended``; ``InvalidPayload`` names the field."""
    if not isinstance(resource, Mapping):
        raise InvalidPayload("a deployment must be a JSON object", field="")
    resource_id, name = resource.get("id"), resource.get("name")
    props = resource.get("properties")
    if not isinstance(resource_id, str) or resource_group_of(resource_id) is None:
        raise InvalidPayload("the deployment has no resource-group id", field="id")
    if not isinstance(name, str) or not name:
        raise InvalidPayload("the deployment has no name", field="name")
    if not isinstance(props, Mapping):
        raise InvalidPayload("the deployment has no properties", field="properties")
    outputs = props.get("outputResources") or []
    targets = {
        str(item["id"]).lower(): None
        for item in outputs
        if isinstance(item, Mapping) and isinstance(item.get("id"), str)
    }
    for target in operation_targets(operations or []):
        targets.setdefault(target)
    error = props.get("error")
    return Deployment(
        deployment_id=resource_id.lower(),
        resource_group=resource_group_of(resource_id) or "",
        name=name,
        state=str(props.get("provisioningState") or "Unknown"),
        timestamp=_time(props.get("timestamp")),
        duration=props.get("duration") if isinstance(props.get("duration"), str) else None,
        correlation_id=props.get("correlationId")
        if isinstance(props.get("correlationId"), str)
        else None,
        targets=tuple(targets),
        error=str(error.get("message")) if isinstance(error, Mapping) else None,
    )
