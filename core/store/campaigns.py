"""Evidence campaigns in the store: start one (open a request per requirement), read progress.

A start first records the campaign (or checks a re-run against it) together with its
``campaign.start`` entry in the administration audit, in one transaction. Then each
requirement gets its request through ``core.store.evidence.open_request`` (its own
transaction: the request, its audit chain entry and the owner's card job) and a link row in
``evidence_campaign_requests``. A requirement already linked is skipped, and a request already
open for (requirement, period) is linked rather than opened again, so a re-run, or a run
resumed after a crash between the two writes, opens nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.campaigns import (
    START_ACTION,
    Campaign,
    CampaignPlan,
    CampaignRefused,
    Line,
    StartReport,
    Totals,
    totals,
)
from core.evidence_models import DecisionKind, EvidenceRequest, RequestSource, draft_for
from core.store import admin_audit
from core.store import evidence as evidence_store
from core.store import evidence_rows as convert
from core.store.evidence_audit import FollowUp
from core.store.schema_evidence import (
    evidence_campaign_requests,
    evidence_campaigns,
    evidence_decisions,
    evidence_requests,
)
from core.store.store import Store

OwnerCard = Callable[[str], FollowUp]
"""Builds the owner's card job of a request being opened, from its dedupe key."""


async def known_channel(store: Store, channel: str | None) -> str | None:
    """``channel`` when Warden was added to that conversation; else None (no cards)."""
    if channel is None or await store.conversation(channel) is None:
        return None
    return channel


async def start(
    store: Store,
    plan: CampaignPlan,
    *,
    actor: str,
    today: date,
    default_period: str,
    owner_card: OwnerCard | None = None,
    on_step: Callable[[str, bool], None] = lambda _id, _created: None,
) -> StartReport:
    """Start campaign ``plan`` (or run it again): one request per requirement.

    ``plan.period`` None: the campaign's period, or ``default_period`` for a new campaign;
    ``plan.due`` None: the campaign's due date, or each requirement's ``due_days``. A re-run
    naming another period or due date raises ``CampaignRefused``. ``on_step(id, created)``
    is called after each requirement.
    """
    campaign = await _record_start(store, plan, actor=actor, default_period=default_period)
    opened = already = carded = 0
    for requirement in plan.requirements:
        if await _linked(store, campaign.name, requirement.id) is not None:
            already += 1
            on_step(requirement.id, False)
            continue
        draft = draft_for(
            requirement,
            source=RequestSource.CAMPAIGN,
            period=campaign.period,
            requested_by=actor,
            today=today,
            due=campaign.due,
        )
        jobs = [owner_card(draft.dedupe_key())] if owner_card is not None else []
        request, created = await evidence_store.open_request(store, draft, jobs=jobs)
        await _link(store, campaign.name, requirement.id, request.id)
        opened, already = opened + created, already + (not created)
        carded += bool(jobs) and created
        on_step(requirement.id, created)
    return StartReport(campaign, opened, already, carded)


async def _record_start(
    store: Store, plan: CampaignPlan, *, actor: str, default_period: str
) -> Campaign:
    """Insert the campaign, or check a re-run against it and add new requirements; audit it."""
    ids = tuple(r.id for r in plan.requirements)
    async with store.writing() as conn:
        existing = await _read(conn, plan.name)
        if existing is None:
            campaign = Campaign(
                plan.name, plan.period or default_period, plan.due, ids, actor, datetime.now(UTC)
            )
            await conn.execute(evidence_campaigns.insert().values(**_values(campaign)))
        else:
            _check_rerun(existing, plan)
            merged = existing.requirement_ids + tuple(
                i for i in ids if i not in existing.requirement_ids
            )
            campaign = replace(existing, requirement_ids=merged)
            await conn.execute(
                evidence_campaigns.update()
                .where(evidence_campaigns.c.name == plan.name)
                .values(requirements=json.dumps(list(merged)))
            )
        await admin_audit.record(
            conn,
            actor,
            START_ACTION,
            campaign.name,
            period=campaign.period,
            due=campaign.due.isoformat() if campaign.due else None,
            requirements=list(ids),
            rerun=existing is not None,
        )
    return campaign


def _check_rerun(existing: Campaign, plan: CampaignPlan) -> None:
    if plan.period is not None and plan.period != existing.period:
        raise CampaignRefused(
            f"campaign {existing.name!r} is for {existing.period}, not {plan.period}"
        )
    if plan.due is not None and plan.due != existing.due:
        was = existing.due.isoformat() if existing.due else "each requirement's due_days"
        raise CampaignRefused(f"campaign {existing.name!r} is due {was}, not {plan.due}")


async def _linked(store: Store, campaign: str, requirement_id: str) -> str | None:
    stmt = select(evidence_campaign_requests.c.request_id).where(
        evidence_campaign_requests.c.campaign == campaign,
        evidence_campaign_requests.c.requirement_id == requirement_id,
    )
    async with store.reading() as conn:
        return (await conn.execute(stmt)).scalar_one_or_none()


async def _link(store: Store, campaign: str, requirement_id: str, request_id: str) -> None:
    async with store.writing() as conn:
        await conn.execute(
            evidence_campaign_requests.insert().values(
                campaign=campaign, requirement_id=requirement_id, request_id=request_id
            )
        )


async def get(store: Store, name: str) -> Campaign | None:
    """The campaign called ``name``, or None."""
    async with store.reading() as conn:
        return await _read(conn, name)


async def list_campaigns(store: Store) -> list[Campaign]:
    """Every campaign, the newest first."""
    stmt = select(evidence_campaigns).order_by(evidence_campaigns.c.started_at.desc())
    async with store.reading() as conn:
        return [_campaign(row) for row in await conn.execute(stmt)]


async def lines(store: Store, campaign: Campaign) -> list[Line]:
    """One line per requirement of ``campaign``, in its order, with request and approvals."""
    links = evidence_campaign_requests
    stmt = (
        select(evidence_requests)
        .join(links, links.c.request_id == evidence_requests.c.id)
        .where(links.c.campaign == campaign.name)
    )
    async with store.reading() as conn:
        requests = {r.requirement_id: r for r in map(convert.request, await conn.execute(stmt))}
        approvals = await _approvals(conn, list(requests.values()))
    return [
        Line(rid, requests.get(rid), approvals.get(requests[rid].id, 0) if rid in requests else 0)
        for rid in campaign.requirement_ids
    ]


async def _approvals(conn: AsyncConnection, requests: list[EvidenceRequest]) -> dict[str, int]:
    """Approvals of each request's current submission (only the clear columns are read)."""
    current = {r.id: r.submission for r in requests if r.submission}
    if not current:
        return {}
    decisions = evidence_decisions.c
    stmt = (
        select(decisions.request_id, decisions.submission, func.count())
        .where(
            and_(decisions.request_id.in_(current), decisions.kind == DecisionKind.APPROVE.value)
        )
        .group_by(decisions.request_id, decisions.submission)
    )
    rows = await conn.execute(stmt)
    return {row[0]: row[2] for row in rows if current.get(row[0]) == row[1]}


async def _read(conn: AsyncConnection, name: str) -> Campaign | None:
    stmt = select(evidence_campaigns).where(evidence_campaigns.c.name == name)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _campaign(row)


def _campaign(row: Any) -> Campaign:
    return Campaign(
        name=row.name,
        period=row.period,
        due=date.fromisoformat(row.due) if row.due else None,
        requirement_ids=tuple(json.loads(row.requirements)),
        started_by=row.started_by,
        started_at=datetime.fromtimestamp(row.started_at, tz=UTC),
    )


def _values(campaign: Campaign) -> dict[str, Any]:
    return {
        "name": campaign.name,
        "period": campaign.period,
        "due": campaign.due.isoformat() if campaign.due else None,
        "requirements": json.dumps(list(campaign.requirement_ids)),
        "started_by": campaign.started_by,
        "started_at": campaign.started_at.timestamp(),
    }


async def overview(store: Store, today: date) -> list[tuple[Campaign, Totals]]:
    """Every campaign, the newest first, with its totals as of ``today``."""
    return [(c, totals(await lines(store, c), today)) for c in await list_campaigns(store)]


async def progress(store: Store, name: str) -> tuple[Campaign, list[Line]] | None:
    """The campaign called ``name`` with its lines, or None."""
    campaign = await get(store, name)
    return None if campaign is None else (campaign, await lines(store, campaign))
