"""Who may do what in Teams: the role each command and card verb needs, and the check.

:data:`VERB_ROLES` and each command's ``role`` (``cards.commands``) are the one table of
what needs which role (``docs/operator/roles.md`` shows it). :class:`RoleGate` checks a
person against it: a role mapped to no group or app role is held by anyone (in sandbox mode
with nothing mapped, every role is); otherwise the directory is asked (``graph.roles``),
failing closed when it cannot answer. The grant that allowed an action is returned, so it is
recorded with the action (triage record, audit entry).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from bot.types import Card, Refusal, User
from cards.roles import denied_card, whoami_card
from cards.verbs import CardVerb
from core.errors import ResponderCheckUnavailable
from core.roles import Grant, Role, RoleAnswer, RoleMap, everyone

log = logging.getLogger(__name__)

VERB_ROLES: Mapping[CardVerb, Role | None] = MappingProxyType(
    {
        CardVerb.REFRESH: None,
        CardVerb.ASSIGN_ME: Role.RESPONDER,
        CardVerb.ASSIGN: Role.RESPONDER,
        CardVerb.SEVERITY: Role.RESPONDER,
        CardVerb.STATUS: Role.RESPONDER,
        CardVerb.CLOSE: Role.RESPONDER,
        CardVerb.COMMENT: Role.RESPONDER,
        CardVerb.DETAILS: Role.RESPONDER,
        CardVerb.RETRY: Role.RESPONDER,
        CardVerb.LINK: Role.RESPONDER,
        CardVerb.CREATE_CHANGE: Role.RESPONDER,
        CardVerb.EVIDENCE_SUBMIT: None,
        CardVerb.EVIDENCE_APPROVE: Role.REVIEWER,
        CardVerb.EVIDENCE_REJECT: Role.REVIEWER,
        CardVerb.EVIDENCE_REQUEST_CHANGES: Role.REVIEWER,
        CardVerb.EVIDENCE_ATTACH_FILE: None,
        CardVerb.BUDGET_ACKNOWLEDGE: Role.OPERATOR,
        CardVerb.BUDGET_OPEN_CHANGE: Role.OPERATOR,
    }
)
"""The role each card verb needs (None: anyone the card was shown to; handing in evidence is
the request owner's, which the workflow checks)."""

DOING: Mapping[Role, str] = MappingProxyType(
    {
        Role.RESPONDER: "triage incidents or link them to records",
        Role.REVIEWER: "request evidence or decide on it",
        Role.AUDITOR: "read the audit trail",
        Role.OPERATOR: "subscribe conversations, act on budget alerts or administer Warden",
    }
)
"""What each role is needed for, as a denial says it."""


class RoleSource(Protocol):
    """A person's roles from the directory (``graph.roles.RoleResolver``)."""

    async def roles(self, object_id: str) -> RoleAnswer:
        """The person's roles; ``ResponderCheckUnavailable`` when that cannot be told now."""

    async def group_names(self, group_ids: Sequence[str]) -> dict[str, str]:
        """Display names of those groups the directory can name."""

    async def aclose(self) -> None:
        """Release what the source holds open."""


class RoleDenied(Refusal):
    """The person does not hold ``role``; the message says how to get it."""

    def __init__(self, role: Role, message: str) -> None:
        super().__init__(message)
        self.role = role

    def card(self) -> Card:
        """The denial as a card of its own (for commands)."""
        return denied_card(self.role, str(self))


class RoleGate:
    """Checks a person's roles: open roles at once, mapped ones in the directory."""

    def __init__(self, role_map: RoleMap, source: RoleSource | None = None) -> None:
        """``source``: the directory; without one a mapped role cannot be held (fail closed)."""
        self._map = role_map
        self._source = source

    @property
    def role_map(self) -> RoleMap:
        """Where each role comes from."""
        return self._map

    async def require(self, user: User, role: Role | None) -> Grant | None:
        """The grant that lets ``user`` act with ``role`` (None when no role is needed);
        ``RoleDenied`` when they lack it, ``Refusal`` when it cannot be told now."""
        if role is None:
            return None
        unrestricted = self._map.unrestricted(role)
        if unrestricted is not None:
            return unrestricted
        answer = await self.answer(user)
        grant = answer.first(role)
        if grant is None:
            log.info("action refused: the %s role is not held", role.value)
            names = await self._names(self._map.groups.get(role, ()))
            raise RoleDenied(role, self._map.denial(role, DOING[role], names))
        return grant

    async def answer(self, user: User) -> RoleAnswer:
        """Every role of ``user`` with its sources; ``Refusal`` when it cannot be told now."""
        if not self._map.any_mapped:
            return everyone(self._map)
        object_id = (user.aad_object_id or "").lower()
        if not object_id:
            raise Refusal("Warden could not tell who you are, so nothing was changed.")
        if self._source is None:
            log.warning("roles are mapped but Warden has no Graph connection; refused")
            raise Refusal(
                "Warden cannot check roles: it has no connection to Microsoft Graph. "
                "Nothing was changed; tell your Warden operator."
            )
        try:
            return await self._source.roles(object_id)
        except ResponderCheckUnavailable:  # fail closed
            log.warning("role check unavailable; refused")
            raise Refusal(
                "Warden could not check your roles just now; nothing was changed. "
                "Try again in a minute."
            ) from None

    async def whoami(self, user: User) -> Card:
        """The ``whoami`` card of ``user``."""
        answer = await self.answer(user)
        names = await self._names(self._map.all_groups)
        return whoami_card(user.name, answer, self._map, names)

    async def aclose(self) -> None:
        """Release the directory's connections."""
        if self._source is not None:
            await self._source.aclose()

    async def _names(self, group_ids: Sequence[str]) -> dict[str, str]:
        if self._source is None or not group_ids:
            return {}
        return await self._source.group_names(list(group_ids))
