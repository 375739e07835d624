"""What Warden's SCIM service is, in scim2-models' terms, and its roster documents both ways.

The service serves ``User`` with the enterprise extension and ``Group``; it announces PATCH,
filters, ETags and sorting, no bulk and no password change. Its reading policy tolerates what
Entra ID's provisioning service sends (a ``remove`` carrying a ``value``, a PATCH filter that
matches nothing yet) and refuses unknown attributes (the SCIM interoperability profile §5.3).
``entra_patch`` rewrites the one Entra habit the models cannot read: a ``manager`` given as
the bare id of the manager.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

from core.store.roster import GROUP, USER, RosterRecord, RosterWrite

UserE = User[EnterpriseUser]
"""A person: the core User schema with the enterprise extension (manager, department, …)."""

ENTERPRISE = str(EnterpriseUser.__schema__)
MANAGER_PATH = f"{ENTERPRISE}:manager".casefold()
ENDPOINTS = {USER: "Users", GROUP: "Groups"}
MODELS: dict[str, type[Resource[Any]]] = {USER: UserE, GROUP: Group}


def provider(max_results: int) -> ScimProvider:
    """The SCIM service description that discovery publishes and every payload is read under."""
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="The secret token of Entra ID's provisioning configuration "
                "(WARDEN_SCIM__TOKENS).",
                primary=True,
            )
        ],
    )
    policy = ScimPolicy(
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    )
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(UserE), ResourceType.from_resource(Group)],
        config=config,
        policy=policy,
    )


def _manager(value: Any) -> Any:
    """A manager written as a bare id (Entra ID) as the complex value the schema defines."""
    if isinstance(value, str):
        value = {"value": value} if value else None
    if isinstance(value, dict) and value.get("value") and not value.get("$ref"):
        value = {**value, "$ref": f"../Users/{value['value']}"}
    return value


def entra_patch(body: Any) -> Any:
    """The PATCH body with ``manager`` values as complex values (other parts untouched)."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        return body
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            continue
        path = str(operation.get("path") or "").casefold()
        if path == MANAGER_PATH and "value" in operation:
            operation["value"] = _manager(operation["value"])
    return body


def entra_resource(body: Any) -> Any:
    """A POST or PUT body with a bare-id ``manager`` made a complex value."""
    extension = body.get(ENTERPRISE) if isinstance(body, dict) else None
    if isinstance(extension, dict) and "manager" in extension:
        extension["manager"] = _manager(extension["manager"])
    return body


def to_write(kind: str, resource: Resource[Any]) -> RosterWrite:
    """What the store keeps of a validated resource (no id, no meta, no password)."""
    document = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for generated in ("id", "meta"):
        document.pop(generated, None)
    if isinstance(resource, Group):
        members = tuple(m.value for m in resource.members or () if m.value)
        return RosterWrite(
            GROUP, resource.display_name or "", document, resource.external_id, members=members
        )
    assert isinstance(resource, User)
    extension = resource[EnterpriseUser]
    manager = extension.manager.value if extension and extension.manager else None
    active = True if resource.active is None else resource.active
    return RosterWrite(
        USER, resource.user_name or "", document, resource.external_id, active, manager
    )


def etag(record: RosterRecord) -> str:
    """The record's weak ETag (its version)."""
    return f'W/"{record.version}"'


def to_resource(record: RosterRecord, base_url: str) -> Resource[Any]:
    """The stored record as a resource, with its id and ``meta``."""
    model = MODELS[record.kind]
    meta = Meta(
        resource_type=record.kind,
        created=datetime.fromtimestamp(record.created_at, UTC),
        last_modified=datetime.fromtimestamp(record.updated_at, UTC),
        location=f"{base_url}/{ENDPOINTS[record.kind]}/{record.id}",
        version=etag(record),
    )
    resource = model.model_validate({**record.document, "id": record.id}, scim_ctx=None)
    resource.meta = meta
    return resource


__all__ = ["URN", "UserE", "entra_patch", "entra_resource", "provider", "to_resource", "to_write"]
