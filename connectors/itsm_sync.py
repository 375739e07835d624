"""What keeps any ITSM system and Warden in step, whatever the system (ServiceNow, JSM).

Every ITSM connector writes outcomes out through two outbox handlers and reads changes back
with a poller; the steps are the same for all, only the words differ:

- :class:`OutcomeDelivery` (``itsm.outcome``) writes what happened to a linked record; a
  record gone is not retried. A subclass says which change the outcome becomes.
- :class:`CreateDelivery` (``itsm.create_change``) creates (or finds) the incident's record
  and links it. A subclass says which draft the incident becomes (:func:`sentinel_text`
  gives the title and description both use).
- :class:`ItsmPoller` reads the records updated since its checkpoint and applies each to its
  links (``links.record_changed`` changes a link only when its state or priority moved, so
  the poll and the webhook together never duplicate). A subclass names its checkpoint, the
  record types it reads, its service (the log line and the ``sync_last_success`` label) and
  its logger.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from core.errors import DeliveryError, ItsmRecordNotFound, Outcome
from core.itsm import ChangeDraft, ItsmChange, ItsmRecord, ItsmSystem, RecordType
from core.metrics import Metrics
from core.models import Incident
from core.store import checkpoints
from core.store import links as links_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import Actor


class ItsmWriter(Protocol):
    """What the outbox handlers need of a connector's client."""

    async def update(self, record: ItsmRecord, change: ItsmChange) -> ItsmRecord:
        """Write ``change`` to ``record``; the record as stored afterwards."""
        ...

    async def create_change(self, draft: ChangeDraft) -> ItsmRecord:
        """The record for ``draft.correlation_id``: the existing one, or a new one."""
        ...


class ItsmReader(Protocol):
    """What the poller needs of a connector's client."""

    def changed_since(
        self, watermark: datetime, *, types: Sequence[RecordType]
    ) -> AsyncIterator[ItsmRecord]:
        """Records updated at or after ``watermark`` (less an overlap), oldest first."""
        ...


def record_of(job: Job) -> ItsmRecord:
    """The linked record a job addresses (by its immutable key; the number for messages)."""
    payload = job.payload
    return ItsmRecord(
        system=ItsmSystem(str(payload["system"])),
        type=RecordType(str(payload["type"])),
        number=str(payload["number"]),
        key=str(payload["record_key"]),
        state="",
        state_label="",
    )


def sentinel_text(incident: Incident) -> tuple[str, str]:
    """The title (at most 160 characters) and description of the record an incident raises."""
    number = f"#{incident.number} " if incident.number is not None else ""
    title = f"Sentinel incident {number}\u00b7 {incident.title}"
    description = f"Raised from Microsoft Sentinel incident {number.strip() or incident.name}."
    if incident.incident_url:
        description += f"\n{incident.incident_url}"
    return title[:160], description


class OutcomeDelivery(ABC):
    """The outbox handler of ``itsm.outcome`` jobs; a subclass says what the change is."""

    def __init__(self, client: ItsmWriter, store: Store) -> None:
        """Write through ``client``; store each record written back on its links."""
        self._client = client
        self._store = store

    @abstractmethod
    def change_for(self, record: ItsmRecord, payload: dict[str, Any]) -> ItsmChange:
        """The change (note, state, ...) that says what the job's payload says happened."""

    async def __call__(self, job: Job) -> None:
        """Write the outcome to its record; a record gone is not retried."""
        record = record_of(job)
        try:
            written = await self._client.update(record, self.change_for(record, job.payload))
        except ItsmRecordNotFound as exc:
            raise DeliveryError(f"{record.number} is gone: {exc}", outcome=Outcome.GONE) from exc
        await links_store.record_changed(self._store, written)


class CreateDelivery(ABC):
    """The outbox handler of ``itsm.create_change`` jobs; a subclass says what the draft is."""

    def __init__(self, client: ItsmWriter, store: Store) -> None:
        """Create through ``client``; link each record created to its incident."""
        self._client = client
        self._store = store

    @abstractmethod
    def draft_for(self, incident: Incident) -> ChangeDraft:
        """The record an incident becomes (the incident's id makes it idempotent)."""

    async def __call__(self, job: Job) -> None:
        """Create (or find) the record, then link it to the incident."""
        incident = await self._store.incident(str(job.payload.get("incident_key")))
        if incident is None:
            raise DeliveryError("the incident is no longer stored", outcome=Outcome.FAIL)
        record = await self._client.create_change(self.draft_for(incident))
        actor = Actor(
            object_id=str(job.payload.get("actor_id") or ""), name=str(job.payload.get("actor"))
        )
        await links_store.link(self._store, incident, record.link(), actor)


class ItsmPoller:
    """Reads back the records changed since the checkpoint, into their links and cards."""

    checkpoint: ClassVar[str]
    """The checkpoint: the newest update time read (ISO 8601, UTC); also the metric label."""

    polled_types: ClassVar[tuple[RecordType, ...]]
    """The record types whose changes are read back."""

    service: ClassVar[str]
    """The service's name at the head of the log line of a failed round."""

    log: ClassVar[logging.Logger]
    """Where a failed round is logged (the connector's own logger)."""

    def __init__(
        self,
        client: ItsmReader,
        store: Store,
        *,
        first_lookback: timedelta = timedelta(hours=1),
        metrics: Metrics | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Read through ``client``; the first round reads ``first_lookback`` back."""
        self._client, self._store = client, store
        self._first_lookback = first_lookback
        self._metrics, self._on_change = metrics, on_change

    async def poll_once(self) -> int:
        """One round: the records read; the checkpoint moves only after they are stored."""
        saved = await checkpoints.load(self._store, self.checkpoint)
        since = datetime.fromisoformat(saved) if saved else datetime.now(UTC) - self._first_lookback
        newest, read, changed = since, 0, 0
        try:
            async for record in self._client.changed_since(since, types=self.polled_types):
                read += 1
                changed += len(await links_store.record_changed(self._store, record) or ())
                if record.updated_at is not None and record.updated_at > newest:
                    newest = record.updated_at
        except DeliveryError as exc:  # the checkpoint stays; the next round reads it again
            self.log.warning("%s poll failed: %s", self.service, exc)
        if newest > since:
            await checkpoints.save(self._store, self.checkpoint, newest.isoformat())
        if changed and self._on_change is not None:
            self._on_change()
        if self._metrics is not None:
            now = datetime.now(UTC).timestamp()
            self._metrics.sync_last_success.labels(self.checkpoint).set(now)
        return read
