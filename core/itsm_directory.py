"""The ITSM systems Warden is connected to, and which one a record belongs to.

ServiceNow and Jira Service Management can be connected at once. ``ItsmDirectory`` is the
one place that maps an ``ItsmSystem`` to its connector and a reference people type to its
system: a ServiceNow number (``CHG0030001``) is ServiceNow's, a Jira issue key (``SEC-12``)
is Jira's. Stored links name their system themselves; new records (*Create change*, a
budget's *Open change*) go to the default system (``WARDEN_ITSM__DEFAULT``). Callers ask
the directory and never name a vendor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from core.errors import DeliveryError, WardenError
from core.itsm import (
    ItsmConnector,
    ItsmRecord,
    ItsmSystem,
    RecordType,
    is_issue_key,
    normalize_number,
)

log = logging.getLogger(__name__)

EXAMPLES = {ItsmSystem.SERVICENOW: "CHG0030001", ItsmSystem.JSM: "SEC-123"}
"""A reference of each system, for messages."""


class ItsmNotConnected(WardenError):
    """A reference names a system Warden is not connected to; ``user_message`` says what an
    administrator configures."""

    def __init__(self, system: ItsmSystem, reference: str, setup: str) -> None:
        """``reference`` is ``system``'s; ``setup`` is what connects it (or why it is off)."""
        self.system = system
        self.user_message = (
            f"{reference} is a {system.display_name} record, and Warden is not connected to "
            f"{system.display_name}: {setup}"
        )
        super().__init__(f"{system.value} is not connected")


def system_of(reference: str) -> ItsmSystem:
    """The system ``reference`` names by its form; ``ValueError`` saying what is accepted."""
    text = reference.strip()
    try:
        normalize_number(text)
    except ValueError:
        if is_issue_key(text):
            return ItsmSystem.JSM
        raise ValueError(
            f"{text.upper()} is neither a ServiceNow record number (e.g. CHG0030001) nor a "
            "Jira issue key (e.g. SEC-123)"
        ) from None
    return ItsmSystem.SERVICENOW


class ItsmDirectory:
    """The connected ITSM systems by ``ItsmSystem``, the default one for new records."""

    def __init__(
        self,
        connectors: Mapping[ItsmSystem, ItsmConnector],
        *,
        default: ItsmSystem | None = None,
        setup: Mapping[ItsmSystem, str] | None = None,
    ) -> None:
        """``default``: where new records go (None: ServiceNow when connected, else JSM).
        ``setup``: per system not connected, what connects it (for messages)."""
        self._connectors = dict(connectors)
        self._setup = dict(setup or {})
        if default is None:
            default = next((s for s in ItsmSystem if s in self._connectors), None)
        self.default_system = default

    @property
    def connected(self) -> bool:
        """True when at least one ITSM system is connected."""
        return bool(self._connectors)

    @property
    def systems(self) -> tuple[ItsmSystem, ...]:
        """The connected systems, ServiceNow first."""
        return tuple(s for s in ItsmSystem if s in self._connectors)

    @property
    def default(self) -> ItsmConnector | None:
        """The connector new records are created in; None when it is not connected."""
        if self.default_system is None:
            return None
        return self._connectors.get(self.default_system)

    def get(self, system: ItsmSystem) -> ItsmConnector | None:
        """The connector of ``system``; None when it is not connected."""
        return self._connectors.get(system)

    def require(self, system: ItsmSystem, reference: str = "") -> ItsmConnector:
        """The connector of ``system``; ``ItsmNotConnected`` naming what to configure."""
        found = self._connectors.get(system)
        if found is None:
            setup = self._setup.get(system, f"{system.display_name} is not configured.")
            raise ItsmNotConnected(system, reference or f"This {system.display_name}", setup)
        return found

    def for_reference(self, reference: str) -> ItsmConnector:
        """The connector of the system ``reference`` names: ``ValueError`` when it names
        none, ``ItsmNotConnected`` when that system is not connected."""
        return self.require(system_of(reference), reference.strip().upper())

    def not_connected_message(self, system: ItsmSystem) -> str:
        """What people are told about ``system`` when it is not connected."""
        setup = self._setup.get(system, "")
        return f"Warden is not connected to {system.display_name}. {setup}".strip()

    async def search(
        self, text: str, *, types: Sequence[RecordType], limit: int = 10
    ) -> list[ItsmRecord]:
        """Records of every connected system matching ``text`` (``limit`` from each); a
        system that fails is left out (logged) and the others still answer. A reference of
        one system's form is looked for in that system only."""
        try:
            only: ItsmSystem | None = system_of(text)
        except ValueError:
            only = None
        found: list[ItsmRecord] = []
        for system in self.systems:
            if only is not None and system is not only:
                continue
            try:
                found += await self._connectors[system].search(text, types=types, limit=limit)
            except DeliveryError:
                log.warning("record search in %s failed", system.value)
        return found
