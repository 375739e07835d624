"""Policy posture read from the evidence tables, and the ``policy.attest`` job of an approval.

``posture`` is a read-only query: the policy-sourced evidence requests, the newest one per
(requirement, resource) that was not cancelled, each stated once per policy id of its
requirement (``core.posture``). Nothing is stored for it.

``attest_job`` is the outbox job written in a reviewer's decision transaction when that
decision approves a policy request: whether it does is decided as for the ITSM outcome
(:func:`core.store.evidence_outcomes.outcome_job` runs the pure rule on the request as read,
at the version the card showed), so the job is written exactly when the approval is. Its
payload names the request only; the handler (``connectors.policy.attest_sync``) reads the
record when it runs, so it sees where the evidence was filed by then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from core.catalog import Catalog, Requirement
from core.evidence import DecisionKind, EvidenceRequest, RequestSource, RequestStatus, Verdict
from core.posture import PolicyPosture, PostureStatus, posture_status
from core.store import evidence as evidence_store
from core.store import evidence_rows as convert
from core.store.evidence_audit import FollowUp
from core.store.evidence_outcomes import outcome_job
from core.store.schema_evidence import evidence_requests, evidence_submissions
from core.store.store import Store

POLICY_ATTEST_JOB = "policy.attest"
"""Job kind: write the Azure Policy attestations of an approved policy request.

Its payload is ``{"request": <request id>}``."""


def attest_ordering_key(request_id: str) -> str:
    """Attestations of one request are written one job at a time: ``policy-attest|<id>``."""
    return f"policy-attest|{request_id}"


async def attest_job(
    store: Store,
    request_id: str,
    verdict: Verdict,
    actor: str,
    *,
    seen: int,
    requirement: Requirement,
) -> FollowUp | None:
    """The job to write with ``actor``'s ``verdict``; None unless it approves a policy request
    of a requirement naming policy assignments or definitions (the job finds the assignments
    of a definition that evaluate each resource when it runs).

    None too when the rule refuses the verdict (the decision itself is refused then). Whether
    the verdict ends the request is decided as for the ITSM outcome (``outcome_job``).
    """
    names_policy = requirement.policy_assignments or requirement.policy_definitions
    if verdict.kind is not DecisionKind.APPROVE or not names_policy:
        return None
    request = await evidence_store.get(store, request_id)
    if request is None or request.source is not RequestSource.POLICY:
        return None
    ending = await outcome_job(
        store, request_id, verdict, actor, seen=seen, requirement=requirement
    )
    if ending is None or ending.payload.get("decision") != RequestStatus.APPROVED.value:
        return None
    return FollowUp(POLICY_ATTEST_JOB, attest_ordering_key(request_id), {"request": request_id})


def policy_ids(requirement: Requirement) -> list[str]:
    """The policy ids a requirement's posture is stated for: its assignments, else its
    definitions. The assignments a definition's attestations went to are found in Azure
    Policy when the job runs and are not recorded, so the posture names the definition."""
    return list(requirement.policy_assignments or requirement.policy_definitions)


@dataclass(frozen=True)
class PosturePage:
    """One page of posture records, and the cursor of the next page (None on the last)."""

    items: list[PolicyPosture]
    cursor: str | None


def posture_key(item: PolicyPosture) -> str:
    """The order and paging cursor of a record: requirement, policy and resource ids."""
    return "|".join((item.requirement_id, item.policy_id.lower(), item.resource_id.lower()))


async def posture(
    store: Store,
    catalog: Catalog | None,
    *,
    requirement: str | None = None,
    status: PostureStatus | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> PosturePage:
    """Posture records matching the filters, ordered by ``posture_key``, after ``cursor``."""
    if catalog is None:
        return PosturePage([], None)
    requests = await _newest_policy_requests(store, requirement)
    refs = await _evidence_refs(store, [r for r in requests if r.status is RequestStatus.APPROVED])
    items = [
        item
        for request in requests
        for item in _stated(request, catalog, refs.get(request.id, request.id))
        if status is None or item.status is status
    ]
    items.sort(key=posture_key)
    if cursor is not None:
        items = [item for item in items if posture_key(item) > cursor]
    page = items[:limit]
    more = len(items) > limit
    return PosturePage(page, posture_key(page[-1]) if more and page else None)


async def _newest_policy_requests(store: Store, requirement: str | None) -> list[EvidenceRequest]:
    """The newest non-cancelled policy request per (requirement, lower-cased resource)."""
    stmt = select(evidence_requests).where(
        evidence_requests.c.source == RequestSource.POLICY.value,
        evidence_requests.c.status != RequestStatus.CANCELLED.value,
    )
    if requirement is not None:
        stmt = stmt.where(evidence_requests.c.requirement_id == requirement)
    stmt = stmt.order_by(evidence_requests.c.created_at, evidence_requests.c.id)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    newest: dict[tuple[str, str], EvidenceRequest] = {}
    for row in rows:
        request = convert.request(row)
        newest[(request.requirement_id, request.scope.lower())] = request
    return list(newest.values())


async def _evidence_refs(store: Store, approved: Iterable[EvidenceRequest]) -> dict[str, str]:
    """The approved submissions' SharePoint web URLs (else the links handed in), by request."""
    current = {request.id: request.submission for request in approved}
    if not current:
        return {}
    stmt = select(evidence_submissions).where(evidence_submissions.c.request_id.in_(current))
    refs: dict[str, str] = {}
    async with store.reading() as conn:
        for row in await conn.execute(stmt):
            submission = convert.submission(store, row)
            link = submission.web_url or submission.url
            if current[submission.request_id] == submission.version and link:
                refs[submission.request_id] = link
    return refs


def _stated(request: EvidenceRequest, catalog: Catalog, ref: str) -> list[PolicyPosture]:
    """The request's posture under each policy id of its requirement (none if unknown)."""
    requirement = catalog.get(request.requirement_id)
    stated = posture_status(request.status)
    if requirement is None or stated is None:
        return []
    evidence = ref if stated is PostureStatus.ATTESTED_COMPLIANT else request.id
    return [
        PolicyPosture(
            policy_id=policy,
            requirement_id=request.requirement_id,
            resource_id=request.scope,
            status=stated,
            evidence_ref=evidence,
            evaluated_at_utc=request.updated_at,
        )
        for policy in policy_ids(requirement)
    ]


__all__ = [
    "POLICY_ATTEST_JOB",
    "PosturePage",
    "attest_job",
    "attest_ordering_key",
    "policy_ids",
    "posture",
    "posture_key",
]
