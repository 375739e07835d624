"""Evidence decisions to ServiceNow: a remediation change request per rejected request.

The outbox handler of ``itsm.evidence_outcome`` jobs (:mod:`core.store.evidence_outcomes`),
run in order per request (ordering key ``itsm|evidence|<request id>``):

- **rejected** → the remediation change request of the request, found or created by its
  ``correlation_id`` (``warden-evidence-<request id>``, exact: several records with it, or an
  answer that ignored the query, is ``ItsmAmbiguous`` and nothing is written), with the
  reason, who rejected, the evidence's hash and link in its description, impact and urgency
  from the field mapping, and a work note naming the rejection. A second rejection of the
  same request updates that change (another work note); it never creates a second one.
- **approved** → when a remediation change exists for the request, a work note naming the
  approvers, the evidence's SHA-256 and its link, and the change closed with the mapped
  Closed state and a close code and notes; when none exists nothing is written.

ServiceNow down is a ``DeliveryError`` to retry (the outbox keeps the order); an ambiguous
lookup is a ``DeliveryError`` that fails, so the job is quarantined with the reason.
"""

from __future__ import annotations

import logging

from pydantic import JsonValue, ValidationError

from connectors.servicenow.fields import Classification
from connectors.servicenow.sync import ServiceNowConnection
from core.errors import DeliveryError, ItsmRecordNotFound, Outcome
from core.evidence import RequestStatus
from core.itsm import ItsmChange, RecordType
from core.models import IncidentStatus, Severity
from core.store import evidence_filing
from core.store.evidence_outcomes import EvidenceOutcome
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

CORRELATION_PREFIX = "warden-evidence-"
"""The remediation change's ``correlation_id`` is this and the request id (≤ 80 chars)."""

CORRELATION_DISPLAY = "Warden evidence"
"""What ServiceNow shows as the source of a remediation change."""

REMEDIATION_SEVERITY = Severity.MEDIUM
"""A remediation change gets the impact/urgency the mapping gives this severity (2/2)."""

_TABLE = RecordType.CHANGE_REQUEST


def correlation_id(request_id: str) -> str:
    """The ``correlation_id`` of the remediation change of an evidence request."""
    return f"{CORRELATION_PREFIX}{request_id}"


def evidence_lines(outcome: EvidenceOutcome) -> list[str]:
    """The evidence decided on: its version, its SHA-256 and its link, as far as known."""
    lines = [f"Evidence version {outcome.submission}"]
    if outcome.sha256:
        lines.append(f"SHA-256 {outcome.sha256}")
    if outcome.link:
        lines.append(outcome.link)
    return lines


class EvidenceOutcomeDelivery:
    """The outbox handler of ``itsm.evidence_outcome`` jobs (see the module docstring)."""

    def __init__(self, connection: ServiceNowConnection, store: Store | None = None) -> None:
        """Write through ``connection``; with ``store``, each outcome written is recorded in
        the request's audit trail (``written_back``, once per submission)."""
        self._client = connection.client
        self._mapping = connection.mapping
        self._store = store

    def remediation_fields(self, outcome: EvidenceOutcome) -> dict[str, str]:
        """The fields (and work note) a rejection writes to the remediation change."""
        impact, urgency, priority = self._mapping.levels(REMEDIATION_SEVERITY)
        title = f"Remediate {outcome.requirement_id}: {outcome.requirement_title}"
        when = outcome.decided_at.strftime("%Y-%m-%d %H:%M UTC")
        description = "\n".join(
            [
                f"Evidence request {outcome.request_id} for {outcome.requirement_id} was "
                f"rejected by {outcome.decided_by} on {when}.",
                f"Reason: {outcome.reason}",
                *evidence_lines(outcome),
            ]
        )
        note = f"Evidence rejected by {outcome.decided_by}: {outcome.reason}\n" + "; ".join(
            evidence_lines(outcome)
        )
        return {
            "short_description": title[:160],
            "description": description,
            "correlation_display": CORRELATION_DISPLAY,
            "impact": str(impact),
            "urgency": str(urgency),
            "priority": str(priority),
            "work_notes": note,
        }

    def closing_change(self, outcome: EvidenceOutcome) -> ItsmChange:
        """The approval's work note, and the change closed as the mapping closes one."""
        closed = self._mapping.to_record(
            _TABLE, IncidentStatus.CLOSED, Classification.TRUE_POSITIVE
        )
        approvers = ", ".join(outcome.approvals) or outcome.decided_by
        note = "; ".join([f"Evidence approved by {approvers}", *evidence_lines(outcome)[1:]])
        return ItsmChange(
            work_note=note,
            state=closed.state,
            close_code=closed.close_code,
            close_notes=(
                f"Remediated: evidence for {outcome.requirement_id} (request "
                f"{outcome.request_id}) approved by {approvers}."
            ),
        )

    async def __call__(self, job: Job) -> None:
        """Write the outcome of one evidence request to its remediation change."""
        try:
            outcome = EvidenceOutcome.model_validate(job.payload)
        except ValidationError as exc:  # the reason names fields, never their values
            where = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
            raise DeliveryError(
                f"unreadable evidence outcome (fields: {where})", outcome=Outcome.FAIL
            ) from exc
        key = correlation_id(outcome.request_id)
        if outcome.decision is RequestStatus.APPROVED:
            await self._approved(outcome, key)
            return
        fields = self.remediation_fields(outcome)
        record = await self._client.upsert_by_correlation(_TABLE, key, fields)
        log.info("evidence rejection written to %s", record.number)
        await self._audit(outcome, record.number)

    async def _approved(self, outcome: EvidenceOutcome, key: str) -> None:
        """Note the approval on the remediation change and close it (when there is one)."""
        record = await self._client.find_by_correlation(_TABLE, key)
        if record is None:
            log.info("evidence request %s approved; no remediation change", outcome.request_id)
            return
        change = self.closing_change(outcome)
        if record.state == change.state:  # closed already: this approval was written
            log.info("remediation change %s is closed already", record.number)
            return
        try:
            await self._client.update(record, change)
        except ItsmRecordNotFound as exc:
            raise DeliveryError(f"{record.number} is gone: {exc}", outcome=Outcome.GONE) from exc
        log.info("evidence approval written to %s, closed", record.number)
        await self._audit(outcome, record.number)

    async def _audit(self, outcome: EvidenceOutcome, number: str) -> None:
        """Record in the audit trail that the outcome reached ServiceNow's ``number``."""
        if self._store is None:
            return
        details: dict[str, JsonValue] = {
            "submission": outcome.submission,
            "decision": outcome.decision.value,
            "record": number,
        }
        await evidence_filing.record_written_back(
            self._store, outcome.request_id, "servicenow", details
        )
