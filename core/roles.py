"""Warden's roles: who may triage, decide on evidence, audit and operate, and why.

Pure: the mapping of each :class:`Role` to Entra groups and app roles (from
``core.settings.roles``), what a directory answer grants (:func:`grants`), and the sentences
that explain a grant (``whoami``, the audit) or a denial (how to get the role). The directory
itself is asked by ``graph.roles``; the checks sit in ``bot.roles``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, JsonValue

from core.settings.roles import RolesSettings


class Role(StrEnum):
    """One of Warden's roles."""

    RESPONDER = "responder"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    OPERATOR = "operator"

    @property
    def title(self) -> str:  # type: ignore[override]
        """The role's name as people read it (``Responder``)."""
        return self.value.capitalize()

    @property
    def purpose(self) -> str:
        """What the role lets a person do, in one sentence."""
        return _PURPOSES[self]


_PURPOSES = {
    Role.RESPONDER: "Triage incidents from their cards and link them to ITSM records.",
    Role.REVIEWER: "Request evidence and decide on it (with the requirement's reviewer groups).",
    Role.AUDITOR: "Read the audit trail: who decided what, and on which role.",
    Role.OPERATOR: "Subscribe conversations to incidents and administer Warden.",
}


class SourceKind(StrEnum):
    """Where a grant comes from."""

    GROUP = "group"
    """Membership (transitive) of an Entra group mapped to the role."""
    APP_ROLE = "app_role"
    """An app role of Warden's enterprise application, assigned to the person or a group."""
    OPEN = "open"
    """The role is not mapped to any group or app role: anyone holds it."""
    SANDBOX = "sandbox"
    """Sandbox mode with no roles configured: everyone holds every role."""


class Grant(BaseModel):
    """Why a person holds a role: one source (a group, an app role, or none needed)."""

    model_config = ConfigDict(frozen=True)

    role: Role
    kind: SourceKind
    id: str = ""
    """The group's object id, or the app role's value; empty for open and sandbox grants."""
    name: str = ""
    """The group's display name when known."""
    via: str = ""
    """For an app role assigned to a group: that group's display name."""

    def explain(self) -> str:
        """Where the grant comes from, in words (``group SOC Responders (Entra)``)."""
        if self.kind is SourceKind.GROUP:
            return f"group {self.name or self.id} (Entra)"
        if self.kind is SourceKind.APP_ROLE:
            through = f" through group {self.via}" if self.via else ""
            return f"app role {self.id}{through}"
        if self.kind is SourceKind.SANDBOX:
            return "sandbox mode: no roles are configured, so everyone has every role"
        return "anyone: no group or app role is mapped to this role"

    def record(self) -> dict[str, JsonValue]:
        """The grant as it is recorded with an action (triage record, audit entry)."""
        recorded: dict[str, JsonValue] = {"role": self.role.value, "source": self.kind.value}
        recorded |= {key: value for key, value in (("id", self.id), ("name", self.name)) if value}
        if self.via:
            recorded["via"] = self.via
        return recorded


@dataclass(frozen=True)
class HeldAppRole:
    """An app role of Warden's application a person is assigned, directly or via a group."""

    value: str
    app_role_id: str
    via_group: str = ""
    """The display name of the group it is assigned to; empty when assigned to the person."""


@dataclass(frozen=True)
class RoleMap:
    """Each role's Entra groups (object ids, lower-case) and app roles (values or ids)."""

    groups: Mapping[Role, tuple[str, ...]] = field(default_factory=dict)
    app_roles: Mapping[Role, tuple[str, ...]] = field(default_factory=dict)
    sandbox: bool = False
    """Sandbox mode: with nothing mapped at all, everyone holds every role."""

    @classmethod
    def from_settings(cls, settings: RolesSettings, *, sandbox: bool = False) -> RoleMap:
        """The map ``WARDEN_ROLES__*`` describes."""
        groups = {role: tuple(getattr(settings, f"{role.value}_groups")) for role in Role}
        apps = {role: tuple(getattr(settings, f"{role.value}_app_roles")) for role in Role}
        return cls(groups, apps, sandbox)

    def mapped(self, role: Role) -> bool:
        """True when the role is restricted to some groups or app roles."""
        return bool(self.groups.get(role) or self.app_roles.get(role))

    @property
    def any_mapped(self) -> bool:
        """True when at least one role is restricted."""
        return any(self.mapped(role) for role in Role)

    @property
    def all_groups(self) -> list[str]:
        """Every group mapped to a role, sorted, each once."""
        return sorted({group for ids in self.groups.values() for group in ids})

    def unrestricted(self, role: Role) -> Grant | None:
        """The grant everyone has when ``role`` is not mapped; None when it is."""
        if self.mapped(role):
            return None
        kind = SourceKind.SANDBOX if self.sandbox and not self.any_mapped else SourceKind.OPEN
        return Grant(role=role, kind=kind)

    def how_to_get(self, role: Role, names: Mapping[str, str] | None = None) -> str:
        """How a person gets ``role``: the groups to join or the app roles to be assigned."""
        names = names or {}
        groups = " or ".join(f"group {names.get(g, g)}" for g in self.groups.get(role, ()))
        apps = " or ".join(f"app role {value}" for value in self.app_roles.get(role, ()))
        if not groups and not apps:
            return "Anyone holds it."
        ways = [f"to add you to {groups}"] if groups else []
        ways += [f"to assign you {apps} on Warden's enterprise application"] if apps else []
        return f"To get it, ask your Entra ID administrator {', or '.join(ways)}."

    def denial(self, role: Role, doing: str, names: Mapping[str, str] | None = None) -> str:
        """The sentence a person reads when they lack ``role`` for ``doing``."""
        return (
            f"Only people with Warden's {role.title} role can {doing}; nothing was changed. "
            + self.how_to_get(role, names)
        )


@dataclass(frozen=True)
class RoleAnswer:
    """A person's roles, each with every source that grants it (empty: not held)."""

    grants: Mapping[Role, tuple[Grant, ...]]

    def holds(self, role: Role) -> bool:
        """True when at least one source grants ``role``."""
        return bool(self.grants.get(role))

    def first(self, role: Role) -> Grant | None:
        """The grant recorded when the person acts with ``role`` (groups first)."""
        found = self.grants.get(role, ())
        return found[0] if found else None


def grants(
    role_map: RoleMap,
    member_of: Iterable[str],
    app_roles: Iterable[HeldAppRole],
    names: Mapping[str, str] | None = None,
) -> RoleAnswer:
    """What a person holds, given the mapped groups they are in and the app roles they have."""
    names = names or {}
    groups = {group.lower() for group in member_of}
    held = list(app_roles)
    found: dict[Role, tuple[Grant, ...]] = {}
    for role in Role:
        open_grant = role_map.unrestricted(role)
        if open_grant is not None:
            found[role] = (open_grant,)
            continue
        by_group = [
            Grant(role=role, kind=SourceKind.GROUP, id=group, name=names.get(group, ""))
            for group in role_map.groups.get(role, ())
            if group in groups
        ]
        wanted = {value.lower() for value in role_map.app_roles.get(role, ())}
        by_app = [
            Grant(role=role, kind=SourceKind.APP_ROLE, id=app.value, via=app.via_group)
            for app in held
            if app.value.lower() in wanted or app.app_role_id.lower() in wanted
        ]
        found[role] = tuple(by_group + by_app)
    return RoleAnswer(found)


def everyone(role_map: RoleMap) -> RoleAnswer:
    """The answer when no role is mapped: every role, held by anyone."""
    return grants(role_map, (), ())
