"""Evidence requests from Azure Policy non-compliance, opened and resolved by a poller.

One round, for each requirement of the catalog that names Azure Policy ids: read every
NonCompliant state in each configured scope (``WARDEN_POLICY_SCOPES``), by each assignment id
and each definition id, and open one request per (requirement, resource) with the owner's
card job for ``WARDEN_EVIDENCE_CHANNEL``. The store's dedupe key (requirement, resource)
makes a repeat, a restart or a second replica open nothing twice; the poller keeps no memory
of its own.

Then every request of the requirement still in play whose resource (inside the scopes) was
not reported is checked with ``compliance_of`` for each of the requirement's assignments:
compliant, exempt or no longer evaluated resolves it "by policy" and redraws its cards. A
requirement whose reads did not all answer resolves nothing that round (an absence read
from a failed call proves nothing); a requirement naming only definitions is resolved on a
complete read that no longer lists the resource. A Policy Insights failure is logged and the
round goes on: what it opened stays, the next round retries the rest.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from connectors.policy.client import PolicyInsightsClient
from connectors.policy.errors import PolicyInsightsError
from connectors.sentinel.connection import SentinelConnection
from core.breaker import Breakers
from core.catalog import Catalog, Requirement
from core.evidence import WARDEN, EvidenceRequest, RequestSource, RequestStatus, draft_for
from core.leader import leading
from core.settings import Settings
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store.evidence_audit import FollowUp
from core.store.evidence_cards import CardRole
from core.store.store import Store

log = logging.getLogger(__name__)

LEADER_NAME = "policy-evidence-poller"
"""The leadership name: one replica at a time reads Azure Policy for evidence."""

_IN_PLAY = tuple(status for status in RequestStatus if not status.final)


class CardJob(Protocol):
    """Builds the ``evidence.card`` job of one card (``bot.evidence.card_job``)."""

    def __call__(
        self, request_key: str, role: CardRole, conversation_id: str, *, by_key: bool
    ) -> FollowUp:
        """The job bringing ``role``'s card in the conversation up to date."""
        ...


@dataclass(frozen=True)
class EvidenceCards:
    """Where the owner's cards of policy requests are posted, and how their jobs are built."""

    channel: str
    job: CardJob


@dataclass
class RoundReport:
    """What one round did: requests opened and resolved, and the reads that failed."""

    opened: int = 0
    resolved: int = 0
    failures: int = 0


class PolicyEvidencePoller:
    """Opens and resolves evidence requests from the latest Azure Policy states."""

    def __init__(
        self,
        client: PolicyInsightsClient,
        store: Store,
        catalog: Catalog,
        scopes: Sequence[str],
        *,
        period: Callable[[date], str],
        cards: EvidenceCards | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """Poll ``scopes`` for ``catalog``'s requirements; ``period`` names a day's period
        (``bot.evidence.quarter``); ``cards`` None: requests get no card; ``on_change`` is
        called after a round that wrote (the outbox worker's ``wake``)."""
        self._client = client
        self._store = store
        self._catalog = catalog
        self._scopes = [scope.rstrip("/") for scope in scopes]
        self._period = period
        self._cards = cards
        self._today = today
        self._on_change = on_change

    def requirements(self) -> list[Requirement]:
        """The requirements polled: those naming an Azure Policy assignment or definition."""
        return [r for r in self._catalog if r.policy_assignments or r.policy_definitions]

    async def poll_once(self) -> RoundReport:
        """One round over every polled requirement and scope; what it did."""
        report = RoundReport()
        channel = await self._channel()
        for requirement in self.requirements():
            found, complete = await self._non_compliant(requirement, report)
            for resource_id in found.values():
                report.opened += await self._open(requirement, resource_id, channel)
            if complete:
                report.resolved += await self._resolve_gone(requirement, found, channel, report)
            else:
                log.warning(
                    "Azure Policy reads of %s failed this round; its requests are not resolved "
                    "until a round reads them all",
                    requirement.id,
                )
        if report.opened or report.resolved:
            self._on_change()
        log.info(
            "policy evidence round: %d opened, %d resolved by policy, %d failed reads",
            report.opened,
            report.resolved,
            report.failures,
        )
        return report

    async def _channel(self) -> str | None:
        """The evidence channel when Warden knows it; else None (requests get no card)."""
        if self._cards is None:
            log.info("WARDEN_EVIDENCE_CHANNEL is not set: policy requests get no card")
            return None
        conversation = await self._store.conversation(self._cards.channel)
        if conversation is None:
            log.warning(
                "WARDEN_EVIDENCE_CHANNEL names a conversation Warden was never added to; "
                "policy requests are opened without a card"
            )
            return None
        return self._cards.channel

    async def _non_compliant(
        self, requirement: Requirement, report: RoundReport
    ) -> tuple[dict[str, str], bool]:
        """The requirement's non-compliant resource ids (by lower-cased id), and whether
        every read answered. Records read before a failure are kept."""
        found: dict[str, str] = {}
        complete = True
        for scope in self._scopes:
            for assignment, definition in _policy_filters(requirement):
                try:
                    states = self._client.non_compliant(
                        scope, policy_assignment_id=assignment, policy_definition_id=definition
                    )
                    async for state in states:
                        found.setdefault(state.resource_id.lower(), state.resource_id)
                except (PolicyInsightsError, ValueError) as exc:
                    complete = False
                    report.failures += 1
                    log.warning("reading Azure Policy for %s failed: %s", requirement.id, exc)
        return found, complete

    async def _open(self, requirement: Requirement, resource_id: str, channel: str | None) -> int:
        """Open the request for (requirement, resource) unless one is open; 1 if opened."""
        today = self._today()
        draft = draft_for(
            requirement,
            source=RequestSource.POLICY,
            period=self._period(today),
            requested_by=WARDEN,
            today=today,
            scope=resource_id,
            resources=[resource_id],
        )
        jobs = []
        if self._cards is not None and channel is not None:
            jobs.append(self._cards.job(draft.dedupe_key(), CardRole.OWNER, channel, by_key=True))
        request, created = await evidence_store.open_request(self._store, draft, jobs=jobs)
        if created:
            log.info("evidence request %s opened from Azure Policy (%s)", request.id, draft.period)
        return int(created)

    async def _resolve_gone(
        self,
        requirement: Requirement,
        found: dict[str, str],
        channel: str | None,
        report: RoundReport,
    ) -> int:
        """Resolve the requirement's requests whose resource is compliant now; how many."""
        resolved = 0
        for request in await self._in_play(requirement):
            resource = request.scope.lower()
            if resource in found or not self._covers(resource):
                continue
            if not await self._compliant(requirement, request.scope, report):
                continue
            jobs = await self._redraws(request.id, channel)
            done = await evidence_store.resolve_by_policy(
                self._store, requirement.id, request.scope, jobs=jobs
            )
            if done is not None:
                log.info("evidence request %s resolved by policy", done.id)
                resolved += 1
        return resolved

    async def _in_play(self, requirement: Requirement) -> list[EvidenceRequest]:
        """The requirement's policy requests that are not final yet."""
        found: list[EvidenceRequest] = []
        for status in _IN_PLAY:
            listed = await evidence_store.list_requests(
                self._store, requirement=requirement.id, status=status
            )
            found += [r for r in listed if r.source is RequestSource.POLICY]
        return found

    def _covers(self, resource: str) -> bool:
        """True when the (lower-cased) resource id lies inside one of the polled scopes."""
        return any(
            resource == scope.lower() or resource.startswith(scope.lower() + "/")
            for scope in self._scopes
        )

    async def _compliant(
        self, requirement: Requirement, resource_id: str, report: RoundReport
    ) -> bool:
        """True when no assignment of the requirement reports the resource non-compliant."""
        for assignment in requirement.policy_assignments:
            try:
                state = await self._client.compliance_of(resource_id, assignment)
            except (PolicyInsightsError, ValueError) as exc:
                report.failures += 1
                log.warning("checking a resource of %s failed: %s", requirement.id, exc)
                return False
            if state is not None and not state.is_compliant:
                return False
        return True

    async def _redraws(self, request_id: str, channel: str | None) -> list[FollowUp]:
        """Jobs redrawing the request's cards: the owner's, and the reviewers' once it was
        posted (the delivery takes each to where it sits)."""
        if self._cards is None or channel is None:
            return []
        roles = [CardRole.OWNER]
        if await cards_store.posted_in(self._store, request_id, CardRole.REVIEWERS):
            roles.append(CardRole.REVIEWERS)  # delivered where it sits (a review channel too)
        return [self._cards.job(request_id, role, channel, by_key=False) for role in roles]


def _policy_filters(requirement: Requirement) -> list[tuple[str | None, str | None]]:
    """The (assignment, definition) filters of a requirement's reads: one id each."""
    return [(a, None) for a in requirement.policy_assignments] + [
        (None, d) for d in requirement.policy_definitions
    ]


async def polling(
    settings: Settings,
    store: Store,
    catalog: Catalog,
    breakers: Breakers,
    *,
    period: Callable[[date], str],
    cards: EvidenceCards | None,
    on_change: Callable[[], None],
    connection: SentinelConnection | None = None,
) -> AsyncIterator[None]:
    """Poll Azure Policy for evidence on one replica at a time while Warden runs.

    An aiohttp cleanup context, every ``WARDEN_POLICY_POLL_SECONDS``. ``connection`` is the
    app's ARM connection (its HTTP client and credential); without it one is opened here
    and closed at the end.
    """
    arm = connection or SentinelConnection.from_settings(settings, breakers)
    client = PolicyInsightsClient(arm.http, arm.credential, base_url=settings.arm_endpoint)
    poller = PolicyEvidencePoller(
        client,
        store,
        catalog,
        settings.policy_scopes,
        period=period,
        cards=cards,
        on_change=on_change,
    )

    async def round_() -> None:
        await poller.poll_once()

    try:
        async with leading(store, LEADER_NAME, round_, every=settings.policy_poll_seconds):
            yield
    finally:
        if connection is None:
            await arm.aclose()
