"""The outbox's part of the composition: the handler of each job kind the worker delivers.

Called by ``create_app``: the card jobs' handlers exist before the worker (which holds the
dict and looks a handler up per job), the rest are added once the worker and the ingest writer
exist. What a handler opens is appended to ``closers``, closed after the worker has stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.adapter import TeamsAdapter
from bot.delivery import CommentReplyDelivery, IncidentCardDelivery
from bot.evidence import EvidenceDesk
from bot.evidence_delivery import EvidenceCardDelivery
from bot.evidence_reminders import ReminderDelivery
from bot.links import LinkDesk
from bot.marked_posts import AmbiguousPosts, TeamDirectory
from bot.outside_changes import OutsideChangeDelivery
from bot.triage import TriageDesk
from connectors.policy.attest_sync import attestation_handler
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.links import LinkNoteDelivery
from core.breaker import Breakers
from core.catalog import Catalog
from core.ingest import CARD_JOB, IngestWriter
from core.metrics import Metrics
from core.settings import Settings
from core.store.comments import COMMENT_JOB
from core.store.delta import OUTSIDE_CHANGE_JOB
from core.store.deployments import DEPLOYMENTS_JOB
from core.store.evidence_cards import EVIDENCE_CARD_JOB
from core.store.evidence_reminders import REMINDER_JOB
from core.store.links import LINK_NOTE_JOB
from core.store.posture import POLICY_ATTEST_JOB
from core.store.store import Store
from core.triage import TRIAGE_JOB
from core.worker import Handler
from wiring import budgets as budgets_wiring
from wiring import defender as defender_wiring
from wiring import deployments as deployments_wiring
from wiring import itsm as itsm_wiring
from wiring.lifecycle import Closers

if TYPE_CHECKING:
    from graph.channel_messages import ChannelMessages

PACED_JOBS = frozenset({CARD_JOB, COMMENT_JOB, EVIDENCE_CARD_JOB, REMINDER_JOB, OUTSIDE_CHANGE_JOB})
"""The job kinds that post to Teams, so the worker paces them (``WARDEN_PACING__*``)."""


def ambiguous_posts(
    settings: Settings,
    sentinel: SentinelConnection | None,
    breakers: Breakers,
    adapter: TeamsAdapter,
    metrics: Metrics,
) -> AmbiguousPosts:
    """A lost post's answer: look for the card in the channel through Graph."""
    return AmbiguousPosts(
        _channel_messages(settings, sentinel, breakers),
        adapter if isinstance(adapter, TeamDirectory) else None,
        metrics,
    )


def _channel_messages(
    settings: Settings, sentinel: SentinelConnection | None, breakers: Breakers
) -> ChannelMessages | None:
    """Channel messages read through Graph (to find a lost post's card), with an identity."""
    if sentinel is None:
        return None
    from graph.channel_messages import ChannelMessages

    verify = tls_verify(settings)
    return ChannelMessages(
        sentinel.credential, breakers, base_url=settings.graph_endpoint, verify=verify
    )


def card_handlers(
    settings: Settings,
    store: Store,
    adapter: TeamsAdapter,
    *,
    triage: TriageDesk | None,
    links: LinkDesk | None,
    itsm: itsm_wiring.ItsmParts,
    incidents: SentinelConnection | None,
    ambiguous: AmbiguousPosts,
) -> dict[str, Handler]:
    """The incident card, its comment replies and the outside-change alerts, posted to Teams."""
    cmdb = itsm.servicenow is not None and incidents is not None  # CIs need both
    return {
        CARD_JOB: IncidentCardDelivery(
            store,
            adapter,
            triage=triage is not None,
            itsm=itsm.directory.systems if links is not None else (),
            cmdb=cmdb,
            deployments=deployments_wiring.lookback_seconds(settings, incidents),
            ambiguous=ambiguous,
        ),
        COMMENT_JOB: CommentReplyDelivery(store, adapter),
        OUTSIDE_CHANGE_JOB: OutsideChangeDelivery(store, adapter, ambiguous),
    }


def evidence_handlers(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    sentinel: SentinelConnection | None,
    catalog: Catalog | None,
    *,
    adapter: TeamsAdapter,
    evidence: EvidenceDesk | None,
    attesting: bool,
    ambiguous: AmbiguousPosts,
    closers: Closers,
) -> dict[str, Handler]:
    """The evidence request cards and reminders (with a desk and a catalog), and the Policy
    attestation job while Azure Policy is on."""
    handlers: dict[str, Handler] = {}
    if evidence is not None and catalog is not None:
        handlers[EVIDENCE_CARD_JOB] = EvidenceCardDelivery(
            store,
            adapter,
            catalog,
            people=evidence.people,
            app_id=settings.microsoft_app_id,
            ambiguous=ambiguous,
        )
        handlers[REMINDER_JOB] = ReminderDelivery(store, adapter, catalog, ambiguous)
        closers.append(evidence.aclose)
    if attesting and catalog is not None:
        attest = attestation_handler(settings, store, catalog, breakers, sentinel)
        handlers[POLICY_ATTEST_JOB] = attest[0]
        closers += [attest[1]] if attest[1] is not None else []
    return handlers


def connector_handlers(
    settings: Settings,
    store: Store,
    writer: IngestWriter,
    *,
    adapter: TeamsAdapter,
    incidents: SentinelConnection | None,
    defender: defender_wiring.DefenderParts | None,
    itsm: itsm_wiring.ItsmParts,
    closers: Closers,
) -> dict[str, Handler]:
    """The jobs written to the connected systems: triage (Sentinel, Defender XDR), link notes,
    ITSM, ARM deployments and budgets."""
    handlers: dict[str, Handler] = {}
    by_source = defender_wiring.triage_handler(settings, store, writer, incidents, defender)
    if by_source is not None:
        handlers[TRIAGE_JOB] = by_source
    if defender is not None:
        closers.append(defender.aclose)
    if incidents is not None:
        handlers[LINK_NOTE_JOB] = LinkNoteDelivery(incidents.client, store)
    handlers.update(itsm_wiring.handlers(settings, store, itsm, incidents))
    reader = deployments_wiring.deployment_reader(settings, store, incidents)
    if reader is not None:
        handlers[DEPLOYMENTS_JOB] = reader
    handlers.update(budgets_wiring.handlers(settings, store, adapter, itsm.directory.default))
    return handlers
