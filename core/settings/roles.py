"""Warden's roles' settings (``WARDEN_ROLES__<FIELD>``): Entra groups and app roles per role.

A role is held by members (transitive) of its groups and by people assigned one of its app
roles on Warden's enterprise application (directly, or through a group they are a direct
member of, as Graph's ``appRoleAssignments`` answers). Each list is comma-separated. A role
with neither groups nor app roles is not restricted: anyone in a conversation with Warden
holds it (as before roles existed). ``WARDEN_RESPONDER_GROUP_IDS`` still works: its groups
are added to ``WARDEN_ROLES__RESPONDER_GROUPS``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from core.catalog import GUID

_GROUPS = "Comma-separated Entra group ids whose (transitive) members are {role}s."
_APP_ROLES = (
    "Comma-separated app role values (e.g. `Warden.{title}`) or ids of Warden's enterprise "
    "application whose assignees are {role}s."
)

GroupIds = Annotated[list[str], NoDecode]
AppRoles = Annotated[list[str], NoDecode]


class RolesSettings(BaseModel):
    """Where each of Warden's roles comes from; every field has a ``WARDEN_ROLES__`` variable."""

    responder_groups: GroupIds = Field(
        default_factory=list, description=_GROUPS.format(role="responder")
    )
    responder_app_roles: AppRoles = Field(
        default_factory=list, description=_APP_ROLES.format(role="responder", title="Responder")
    )
    reviewer_groups: GroupIds = Field(
        default_factory=list, description=_GROUPS.format(role="reviewer")
    )
    reviewer_app_roles: AppRoles = Field(
        default_factory=list, description=_APP_ROLES.format(role="reviewer", title="Reviewer")
    )
    auditor_groups: GroupIds = Field(
        default_factory=list, description=_GROUPS.format(role="auditor")
    )
    auditor_app_roles: AppRoles = Field(
        default_factory=list, description=_APP_ROLES.format(role="auditor", title="Auditor")
    )
    operator_groups: GroupIds = Field(
        default_factory=list, description=_GROUPS.format(role="operator")
    )
    operator_app_roles: AppRoles = Field(
        default_factory=list, description=_APP_ROLES.format(role="operator", title="Operator")
    )
    service_principal_id: str = Field(
        "",
        description="Object id of Warden's service principal (its enterprise application), "
        "whose app role assignments grant roles; required when app roles are set.",
    )
    cache_seconds: float = Field(
        300.0, ge=0, description="How long a person's roles, asked of Graph, are remembered."
    )

    @field_validator(
        "responder_groups",
        "responder_app_roles",
        "reviewer_groups",
        "reviewer_app_roles",
        "auditor_groups",
        "auditor_app_roles",
        "operator_groups",
        "operator_app_roles",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("responder_groups", "reviewer_groups", "auditor_groups", "operator_groups")
    @classmethod
    def _check_groups(cls, value: list[str]) -> list[str]:
        for item in value:
            if GUID.fullmatch(item) is None:
                raise ValueError(f"{item!r} is not a group's object id (a GUID)")
        return [item.lower() for item in value]

    @model_validator(mode="after")
    def _check_principal(self) -> RolesSettings:
        app_roles = (
            self.responder_app_roles
            + self.reviewer_app_roles
            + self.auditor_app_roles
            + self.operator_app_roles
        )
        if app_roles and GUID.fullmatch(self.service_principal_id.strip()) is None:
            raise ValueError(
                "app roles need WARDEN_ROLES__SERVICE_PRINCIPAL_ID, the object id of Warden's "
                "enterprise application"
            )
        return self
