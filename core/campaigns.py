"""Evidence campaigns: one request per requirement of a period, opened from the command line.

The pure part: what a campaign is, how its requirement list, period and due date are checked
against the catalog before anything is written, and how its progress is summed up. The store
side (opening, linking, reading) lives in :mod:`core.store.campaigns`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core.catalog import Catalog, Requirement
from core.errors import WardenError
from core.evidence_models import EvidenceRequest, RequestStatus

PERIOD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
MAX_NAME = 200
START_ACTION = "campaign.start"
"""The ``admin_audit`` action of a campaign start (its target is the campaign's name)."""

_DONE = frozenset({RequestStatus.APPROVED, RequestStatus.RESOLVED_BY_POLICY})


class CampaignRefused(WardenError):
    """A campaign that cannot start as asked; the message tells the operator why."""


@dataclass(frozen=True)
class Campaign:
    """A named evidence collection for one period: which requirements, due when, by whom."""

    name: str
    period: str
    due: date | None
    requirement_ids: tuple[str, ...]
    started_by: str
    started_at: datetime


@dataclass(frozen=True)
class CampaignPlan:
    """A checked request to start a campaign: every requirement is in the catalog."""

    name: str
    period: str | None
    due: date | None
    requirements: tuple[Requirement, ...]


def plan(
    catalog: Catalog,
    name: str,
    *,
    requirement_ids: Sequence[str] | None,
    period: str | None,
    due: date | None,
    today: date,
) -> CampaignPlan:
    """Check a start request; ``requirement_ids`` None means every catalog requirement.

    ``period`` and ``due`` None: the campaign's own (``core.store.campaigns.start``).

    Raises ``CampaignRefused`` naming unknown ids (with the close ones), a due date in the
    past, an empty or over-long name, a malformed period, or an empty requirement list.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise CampaignRefused(f"a campaign name has 1 to {MAX_NAME} characters")
    if period is not None and not PERIOD.fullmatch(period):
        raise CampaignRefused(f"period {period!r} is not like 2026-Q4")
    if due is not None and due < today:
        raise CampaignRefused(f"the due date {due.isoformat()} is in the past")
    if requirement_ids is None:
        return CampaignPlan(name, period, due, tuple(catalog))
    return CampaignPlan(name, period, due, _resolve(catalog, requirement_ids))


def _resolve(catalog: Catalog, requirement_ids: Sequence[str]) -> tuple[Requirement, ...]:
    """The catalog's requirements for ``requirement_ids`` (duplicates dropped), in order."""
    wanted = list(dict.fromkeys(rid.strip() for rid in requirement_ids if rid.strip()))
    if not wanted:
        raise CampaignRefused("give --requirements ID,ID,… or --all")
    unknown = [rid for rid in wanted if catalog.get(rid) is None]
    if unknown:
        known = [r.id for r in catalog]
        raise CampaignRefused(
            "not in the catalog: " + "; ".join(_unknown(rid, known) for rid in unknown)
        )
    return tuple(r for rid in wanted if (r := catalog.get(rid)) is not None)


def _unknown(requirement_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(requirement_id, known, n=3, cutoff=0.6)
    return f"{requirement_id} (did you mean {', '.join(close)}?)" if close else requirement_id


def split_ids(text: str | None) -> list[str] | None:
    """``ID,ID,…`` as a list; None stays None."""
    return None if text is None else [part.strip() for part in text.split(",")]


@dataclass(frozen=True)
class StartReport:
    """What a start did: requests opened, and those that were already open."""

    campaign: Campaign
    opened: int
    already_open: int
    carded: int


@dataclass(frozen=True)
class Line:
    """One requirement of a campaign: its request (None before one is opened) and approvals."""

    requirement_id: str
    request: EvidenceRequest | None
    approvals: int

    def days_late(self, today: date) -> int:
        """Days past due while the owner still owes evidence; 0 otherwise."""
        request = self.request
        if request is None or not request.status.awaiting_evidence:
            return 0
        return max(0, (today - request.due).days)


@dataclass(frozen=True)
class Totals:
    """A campaign's counts, and the share of its requirements whose evidence is approved."""

    requested: int
    submitted: int
    approved: int
    rejected: int
    overdue: int
    requirements: int

    @property
    def completion(self) -> float:
        """Approved (or resolved by policy) over all requirements, in percent."""
        return 100.0 * self.approved / self.requirements if self.requirements else 100.0


def totals(lines: Iterable[Line], today: date) -> Totals:
    """Sum up a campaign's ``lines`` as of ``today``."""
    lines = list(lines)
    statuses = [line.request.status for line in lines if line.request is not None]
    return Totals(
        requested=len(statuses),
        submitted=statuses.count(RequestStatus.SUBMITTED),
        approved=sum(status in _DONE for status in statuses),
        rejected=statuses.count(RequestStatus.REJECTED),
        overdue=sum(line.days_late(today) > 0 for line in lines),
        requirements=len(lines),
    )
