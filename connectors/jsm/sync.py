"""Keeping Jira Service Management and Warden in step: outcomes out, issue changes in.

Out (outbox handlers, in order per issue): ``itsm.outcome`` becomes an internal ADF comment
saying what happened and, for a new Sentinel status, the transition whose *name*
``WARDEN_JSM__TRANSITIONS`` gives; ``itsm.create_change`` creates the incident's request
(idempotent by its ``warden-<incident id>`` label) and links it.

In: ``JsmPoller`` reads the issues updated since its checkpoint less an overlap (JQL
compares ``updated`` to the minute, and a late write can carry an earlier time), and the
signed webhook brings each change at once; both go through ``links.record_changed``, which
changes a link only when its status or priority moved, so together they never duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.http import resilient_client
from connectors.itsm_sync import CreateDelivery, ItsmPoller, OutcomeDelivery, sentinel_text
from connectors.jsm.client import JsmClient
from core.breaker import Breakers
from core.itsm import ChangeDraft, ItsmChange, ItsmRecord, RecordType
from core.models import Incident
from core.settings.jsm import JsmSettings
from core.store.store import Store

CHECKPOINT = "jsm.poll"
"""The poller's checkpoint: the newest ``updated`` it has read (ISO 8601, UTC)."""

POLLED_TYPES = tuple(RecordType)
"""Every issue type can be linked, so every one's changes are read back."""


@dataclass
class JsmConnection:
    """The HTTP client, the JSM client and the transition names, for the whole process."""

    http: httpx.AsyncClient
    client: JsmClient
    transitions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: JsmSettings, breakers: Breakers) -> JsmConnection:
        """Connect as ``settings`` say (no I/O until the first call)."""
        http = resilient_client(breakers=breakers)
        return cls(http, JsmClient.from_settings(http, settings), dict(settings.transitions))

    async def aclose(self) -> None:
        """Close the client and its HTTP client."""
        await self.client.aclose()
        await self.http.aclose()


class JsmOutcomeDelivery(OutcomeDelivery):
    """The outbox handler of ``itsm.outcome`` jobs for JSM issues."""

    def __init__(self, connection: JsmConnection, store: Store) -> None:
        super().__init__(connection.client, store)
        self._transitions = connection.transitions

    def change_for(self, record: ItsmRecord, payload: dict[str, Any]) -> ItsmChange:
        """The comment and the transition (by name) that say what happened."""
        note = str(payload.get("note") or "") or None
        status = str(payload.get("status") or "")
        return ItsmChange(work_note=note, state=self._transitions.get(status) or None)


class CreateRequestDelivery(CreateDelivery):
    """The outbox handler of ``itsm.create_change`` jobs: the incident's request, linked."""

    def __init__(self, connection: JsmConnection, store: Store) -> None:
        super().__init__(connection.client, store)

    def draft_for(self, incident: Incident) -> ChangeDraft:
        """The request an incident becomes (the incident's id labels it)."""
        title, description = sentinel_text(incident)
        return ChangeDraft(
            correlation_id=incident.name, short_description=title, description=description
        )


class JsmPoller(ItsmPoller):
    """Reads back the issues changed since the checkpoint, into their links and cards."""

    checkpoint = CHECKPOINT
    polled_types = POLLED_TYPES
    service = "jsm"
    log = logging.getLogger(__name__)
