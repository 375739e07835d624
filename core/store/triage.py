"""Triage actions in the store: recorded with their outbox job, and the cards they redraw.

Recording an action writes, in one transaction, the action (``pending``), the job that will
apply it, and a card job for every conversation showing the incident's card, so everyone
sees "applying…" and then the outcome. Each later state change redraws those cards again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from core.errors import DeliveryError, Outcome
from core.itsm import ConfigurationItem, IncidentLink
from core.models import Incident
from core.roles import Grant
from core.store import outbox
from core.store.cards import redraw_cards
from core.store.cmdb import CIS_OF, stored_cis
from core.store.links import LINKS_OF, StoredLink, enqueue_outcomes, stored_links
from core.store.schema import outbox as outbox_table
from core.store.schema import triage_actions
from core.store.sql import Statement
from core.store.store import Store
from core.triage import TRIAGE_JOB, Actor, TriageAction, TriageChange, TriageState

# The statements of a click's path, built once: a statement object carries its compiled form
# and cache key, so a click pays for neither (bound parameters carry the values).
_COLUMNS = tuple(column.name for column in triage_actions.c)
_LATEST = Statement(
    f"SELECT {', '.join(_COLUMNS)} FROM triage_actions "  # noqa: S608 - the table's own columns
    "WHERE incident_key = :incident_key ORDER BY id DESC LIMIT 1"
)
"""The newest action of an incident (read on every card drawn: straight on the driver)."""
_BY_INTENT = Statement(
    f"SELECT {', '.join(_COLUMNS)} FROM triage_actions WHERE intent_id = :intent_id"  # noqa: S608
)
_INSERT_ACTION = triage_actions.insert()
_INSERT_JOB = outbox_table.insert()
_SHOWN_COLUMNS = ("incident_payload", *_COLUMNS)
_SHOWN_HERE = Statement(
    "SELECT i.payload, "  # noqa: S608 - the tables' own columns
    f"{', '.join('t.' + column for column in _COLUMNS)} "
    'FROM posted_cards p JOIN incidents i ON i."key" = p.incident_key '
    "LEFT OUTER JOIN triage_actions t ON t.id = "
    "(SELECT max(id) FROM triage_actions WHERE incident_key = :incident_key) "
    "WHERE p.incident_key = :incident_key AND p.conversation_id = :conversation_id"
)
"""The incident whose card is in the conversation, with its newest action (or NULLs)."""


def triage_ordering_key(incident_key: str) -> str:
    """Triage writes to one incident run one at a time, in the order they were asked."""
    return f"triage|{incident_key}"


async def record(
    store: Store,
    *,
    intent_id: str,
    incident_key: str,
    conversation_id: str,
    verb: str,
    change: TriageChange,
    actor: Actor,
    job: dict[str, Any],
    skip_card_in: str | None = None,
) -> TriageAction:
    """Record a pending action, the job that applies it, and the cards that show it.

    One write transaction (one hop to SQLite's writer thread: a click is answered in the time
    of one commit). ``skip_card_in`` names the conversation whose card the invoke answer
    itself replaces.
    """
    now = time.time()
    values = {
        "intent_id": intent_id,
        "incident_key": incident_key,
        "conversation_id": conversation_id,
        "verb": verb,
        "change": store.cipher.encrypt(change.model_dump_json()),
        "actor_id": actor.object_id,
        "actor_name": store.cipher.encrypt(actor.name),
        "allowed_by": actor.allowed_by.model_dump_json() if actor.allowed_by else None,
        "state": TriageState.PENDING.value,
        "detail": None,
        "created_at": now,
        "updated_at": now,
    }
    row = outbox.job_row(TRIAGE_JOB, triage_ordering_key(incident_key), job, cipher=store.cipher)

    def write(conn: Connection, _: None) -> int:
        result = conn.execute(_INSERT_ACTION, values)
        conn.execute(_INSERT_JOB, row)
        redraw_cards(conn, store, incident_key, skip=skip_card_in)
        (action_id,) = result.inserted_primary_key or (0,)
        return int(action_id)

    return TriageAction(
        id=await store.run_write(write, None),
        intent_id=intent_id,
        incident_key=incident_key,
        conversation_id=conversation_id,
        verb=verb,
        change=change,
        actor=actor,
        state=TriageState.PENDING,
        created_at=now,
        updated_at=now,
    )


async def set_state(
    store: Store, intent_id: str, state: TriageState, detail: str | None = None
) -> TriageAction | None:
    """Move an action to ``state`` and redraw its incident's cards; the action, if found.

    An action that reached a final state stays there (a job run twice changes nothing).
    """

    def write(conn: Connection, _: None) -> TriageAction | None:
        found = conn.execute(
            select(triage_actions).where(triage_actions.c.intent_id == intent_id)
        ).first()
        if found is None:
            return None
        current = _action(store, found)
        if current.state.final or (current.state, current.detail) == (state, detail):
            return current
        now = time.time()
        conn.execute(
            update(triage_actions)
            .where(triage_actions.c.intent_id == intent_id)
            .values(state=state.value, detail=detail, updated_at=now)
        )
        redraw_cards(conn, store, current.incident_key)
        if state is TriageState.APPLIED:
            outcome = itsm_outcome(current)
            if outcome is not None:
                enqueue_outcomes(conn, store, current.incident_key, outcome)
        return current.model_copy(update={"state": state, "detail": detail, "updated_at": now})

    return await store.run_write(write, None)


async def open_action(store: Store, intent_id: str) -> tuple[TriageAction, Incident | None] | None:
    """The action ``intent_id`` names, with the incident stored under its key, for a job to
    apply; None when it reached a final state; ``DeliveryError`` (fail) when it is no longer
    stored."""
    action = await by_intent(store, intent_id)
    if action is None:
        raise DeliveryError("the triage action is no longer stored", outcome=Outcome.FAIL)
    if action.state.final:
        return None
    return action, await store.incident(action.incident_key)


async def set_unanswered(store: Store, intent_id: str, vendor: str, *, spent: bool) -> None:
    """Record that ``vendor`` has not answered the action's call: *waiting* (the job runs
    again) or, once its attempts are ``spent``, *failed*."""
    state = TriageState.FAILED if spent else TriageState.WAITING
    detail = (
        f"{vendor} did not answer in time; nothing was changed."
        if spent
        else f"{vendor} is unavailable or busy; Warden will apply it when it answers."
    )
    await set_state(store, intent_id, state, detail)


@dataclass(frozen=True)
class Shown:
    """An incident whose card is in a conversation, and its newest triage action."""

    incident: Incident
    latest: TriageAction | None
    links: list[StoredLink]
    """Every link the incident ever had (``links_stamp`` versions the card with them)."""
    cis: list[ConfigurationItem] = field(default_factory=list)
    """The configuration items matching the incident's entities, as the card lists them."""

    @property
    def standing_links(self) -> list[IncidentLink]:
        """The links the card shows."""
        return [stored.link for stored in self.links if stored.active]


async def shown_here(store: Store, incident_key: str, conversation_id: str) -> Shown | None:
    """The incident and its newest action, when its card was posted in the conversation.

    Three lookups (the card with the incident and its newest action, its links, its CIs) in
    one snapshot, straight on the driver: a click's reads at a fraction of the cost of
    SQLAlchemy's execution. ``None`` when the card is not there.
    """
    params = {"incident_key": incident_key, "conversation_id": conversation_id}
    [shown, linked, items] = await store.read_many(
        [(_SHOWN_HERE, params), (LINKS_OF, {"key": incident_key}), (CIS_OF, {"key": incident_key})]
    )
    if not shown.rows:
        return None
    [row] = shown.named(_SHOWN_COLUMNS)
    links = stored_links(store, linked)
    cis = stored_cis(store, items)
    payload = store.cipher.decrypt(row.incident_payload, "incidents.payload", incident_key)
    latest = None if row.id is None else _action(store, row)
    return Shown(Incident.model_validate_json(payload), latest, links, cis)


async def latest(store: Store, incident_key: str) -> TriageAction | None:
    """The incident's newest triage action, which its card shows."""
    rows = (await store.read(_LATEST, {"incident_key": incident_key})).named(_COLUMNS)
    return _action(store, rows[0]) if rows else None


async def by_intent(store: Store, intent_id: str) -> TriageAction | None:
    """The action recorded under ``intent_id``."""
    rows = (await store.read(_BY_INTENT, {"intent_id": intent_id})).named(_COLUMNS)
    return _action(store, rows[0]) if rows else None


def _action(store: Store, row: Any) -> TriageAction:
    """The action in a ``triage_actions`` row (its sealed columns decrypted)."""
    return TriageAction(
        id=row.id,
        intent_id=row.intent_id,
        incident_key=row.incident_key,
        conversation_id=row.conversation_id,
        verb=row.verb,
        change=TriageChange.model_validate_json(
            store.cipher.decrypt(row.change, "triage_actions.change", row.intent_id)
        ),
        actor=Actor(
            object_id=row.actor_id,
            name=store.cipher.decrypt(row.actor_name, "triage_actions.actor_name", row.intent_id),
            allowed_by=Grant.model_validate_json(row.allowed_by) if row.allowed_by else None,
        ),
        state=TriageState(row.state),
        detail=row.detail,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def itsm_outcome(action: TriageAction) -> dict[str, Any] | None:
    """What a linked ITSM record is told of an applied action (None: comments stay in
    Sentinel): a work note naming who did what, and the new status or severity."""
    change = action.change
    if change.kind == "comment":
        return None
    outcome: dict[str, Any] = {
        "note": f"Sentinel incident: {change.summary()}, by {action.actor.display} via Teams.",
        "intent": action.intent_id,
    }
    if change.kind == "status" and change.status is not None:
        outcome["status"] = change.status.value
        outcome["classification"] = change.classification
    if change.kind == "severity" and change.severity is not None:
        outcome["severity"] = change.severity.value
    return outcome
