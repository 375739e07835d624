"""Warden's composition root and command line.

``create_app(settings)`` builds the whole service from one validated ``Settings`` and wires
it explicitly; the store, the ingest writer, the outbox worker (and, with ``--playground``,
the Agents Playground) open and close in aiohttp's ``cleanup_ctx``. Nothing runs at import.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import httpx
import typer
from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.adapter import TeamsAdapter
from bot.auth import BotTokenValidator
from bot.delivery import CommentReplyDelivery, IncidentCardDelivery
from bot.evidence import card_job, quarter
from bot.evidence_delivery import EvidenceCardDelivery
from bot.evidence_reminders import EvidenceReminders, ReminderDelivery
from bot.handlers import WardenBot
from bot.marked_posts import AmbiguousPosts, TeamDirectory
from bot.outside_changes import OutsideChangeDelivery
from bot.receipts import ActivityReceipts
from bot.roles import RoleGate
from bot.triage import DetailsSource, TriageDesk
from cards.commands import COMMANDS
from cli import cmdb as cmdb_commands
from cli import costs as cost_commands
from cli import doctor as doctor_commands
from cli import evidence as evidence_commands
from cli import incidents as incident_commands
from cli import manifest as manifest_commands
from cli import ops as ops_commands
from cli import replay as replay_commands
from cli.common import console, settings_or_exit
from connectors.entra import EntraTokenValidator
from connectors.policy import evidence_poller
from connectors.policy.attest_sync import attestation_handler
from connectors.registry import enabled, held_jobs, is_on, off_messages, snapshot
from connectors.resourcegraph.nightly import CmdbNightly
from connectors.sentinel.comments import CommentRelay
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.links import LinkNoteDelivery
from connectors.sentinel.mapping import incident_from_webhook
from connectors.sentinel.setup import polling
from connectors.sentinel.triage import SentinelDetails
from connectors.ssrf_rules import link_refusal
from core.breaker import Breakers
from core.catalog import Catalog, load_catalog
from core.errors import WardenError
from core.ingest import CARD_JOB, IngestWriter
from core.itsm import ItsmSystem
from core.leader import leading
from core.logs import SCRUBBER, configure_logging
from core.metrics import Metrics
from core.models import IncidentSource
from core.pacing import Pacer
from core.recording import Redactor
from core.settings import Mode, Settings, payload_cipher, settings_table
from core.signing import WebhookVerifier
from core.store.comments import COMMENT_JOB
from core.store.delta import OUTSIDE_CHANGE_JOB
from core.store.deployments import DEPLOYMENTS_JOB
from core.store.evidence import AUDIT_MIRROR_JOB
from core.store.evidence_cards import EVIDENCE_CARD_JOB
from core.store.evidence_reminders import REMINDER_JOB
from core.store.links import LINK_NOTE_JOB
from core.store.posture import POLICY_ATTEST_JOB
from core.store.store import Store
from core.tracing import configure_tracing
from core.triage import TRIAGE_JOB
from core.worker import Handler, OutboxWorker
from web.edge import edge_middleware
from web.health import healthz, openapi, readiness, readyz
from web.health import switched_off as sentinel_off
from web.metrics import metrics_handler, refresh_gauges
from web.posture import PostureApi
from web.recording import Recorder, recording_middleware
from web.webhooks import SentinelWebhook
from wiring import budgets as budgets_wiring
from wiring import cmdb as cmdb_wiring
from wiring import defender as defender_wiring
from wiring import delta as delta_wiring
from wiring import deployments as deployments_wiring
from wiring import evidence as evidence_wiring
from wiring import itsm as itsm_wiring
from wiring import roles as roles_wiring
from wiring import sandboxes

if TYPE_CHECKING:
    from graph.channel_messages import ChannelMessages

T = TypeVar("T")

EXAMPLE_CATALOG = Path(__file__).resolve().parent / "docs" / "examples" / "requirements.yaml"
"""The requirement catalog ``make run`` uses when ``WARDEN_REQUIREMENTS_FILE`` is unset."""

STORE = web.AppKey("store", Store)
BREAKERS = web.AppKey("breakers", Breakers)
WORKER = web.AppKey("worker", OutboxWorker)
CATALOG = web.AppKey("catalog", Catalog)
REMINDERS = web.AppKey("reminders", EvidenceReminders)
CMDB_NIGHTLY = web.AppKey("cmdb_nightly", CmdbNightly)


def create_app(settings: Settings, *, playground: bool = False) -> web.Application:
    """The Warden web application, wired from ``settings``.

    Construction does no I/O; the store, writer and worker start in ``cleanup_ctx`` when
    the application starts and stop when it shuts down.
    """
    sandboxed = playground and settings.mode is Mode.SANDBOX
    if sandboxed and settings.requirements_file is None:  # so evidence can be requested
        settings = settings.model_copy(update={"requirements_file": EXAMPLE_CATALOG})
    catalog = load_catalog(settings.requirements_file) if settings.requirements_file else None
    arm, sharepoint, snow_sandbox, jsm_sandbox, azurite = None, None, None, None, False
    if sandboxed:
        settings, arm, sharepoint, snow_sandbox = sandboxes.embedded(settings, catalog)
        settings, jsm_sandbox = sandboxes.embedded_jsm(settings)
        settings, azurite = sandboxes.embedded_costs(settings)
    connectors, switched_off = snapshot(settings), off_messages(settings)
    SCRUBBER.register_settings(settings)  # before anything can log a secret
    SCRUBBER.pepper = settings.log_pepper.get_secret_value().encode()
    configure_tracing(settings.otlp_endpoint)
    store = Store.from_url(
        settings.effective_database_url,
        settings.store_timeout_seconds,
        cipher=payload_cipher(settings),
    )
    breakers, metrics = Breakers(), Metrics()
    http = httpx.AsyncClient(timeout=settings.bot_auth.fetch_timeout_seconds)
    validator = _bot_token_validator(settings, http)
    pacer = Pacer(margin=settings.pacing.margin_seconds) if settings.pacing.enabled else None
    sentinel = (  # the ARM identity: Sentinel's, and Policy's and Graph's credential too
        SentinelConnection.from_settings(settings, breakers)
        if settings.sentinel_connected
        else None
    )
    incidents = sentinel if enabled(settings, "sentinel") else None
    defender = defender_wiring.connect(settings, breakers, sentinel)
    itsm = itsm_wiring.connect(settings, breakers)  # ServiceNow, JSM, or both
    servicenow, itsm_client = itsm.servicenow, itsm.directory.default
    roles = roles_wiring.role_gate(settings, breakers, sentinel)
    triage = _triage_desk(
        store, sentinel, incidents, defender, roles=roles, itsm=itsm.directory.systems
    )
    links = itsm_wiring.link_desk(settings, store, triage, itsm)
    unfurler = itsm_wiring.unfurler(settings, itsm)
    attesting = is_on(settings, "policy") and catalog is not None  # as the poller runs
    evidence = evidence_wiring.evidence_desk(
        settings,
        store,
        breakers,
        sentinel,
        catalog,
        itsm=servicenow is not None,
        attest=attesting,
        personal=arm is None,  # the Playground's embedded sandbox keeps owner cards in channels
        roles=roles,
    )
    budget_desk = budgets_wiring.desk(settings, store, itsm_client)
    adapter = TeamsAdapter(
        settings,
        WardenBot(
            store,
            breakers,
            triage=triage,
            links=links,
            unfurler=unfurler,
            evidence=evidence,
            connectors=connectors,
            switched_off=switched_off,
            roles=roles,
            budgets=budget_desk,
        ),
        breakers,
        validator=validator,
        metrics=metrics,
        pacer=pacer,
        receipts=ActivityReceipts(store),
    )
    cmdb = servicenow is not None and incidents is not None  # CIs need both
    ambiguous = AmbiguousPosts(  # a lost post's answer: look for the card through Graph
        _channel_messages(settings, sentinel, breakers),
        adapter if isinstance(adapter, TeamDirectory) else None,
        metrics,
    )
    handlers: dict[str, Handler] = {
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
    worker = OutboxWorker(
        store,
        handlers,
        settings.outbox,
        pacer=pacer,
        paced_kinds=frozenset(
            {CARD_JOB, COMMENT_JOB, EVIDENCE_CARD_JOB, REMINDER_JOB, OUTSIDE_CHANGE_JOB}
        ),
        metrics=metrics,
    )
    writer = IngestWriter(store, on_commit=worker.wake)
    if budget_desk is not None:
        budget_desk.wake = worker.wake
    if triage is not None:
        triage.wake = worker.wake
    handlers[AUDIT_MIRROR_JOB], mirror_closers = evidence_wiring.audit_mirror(
        settings, store, breakers
    )
    handlers.update(evidence_wiring.evidence_sync(settings, store, breakers, mirror_closers))
    mirror_closers.append(roles.aclose)
    if evidence is not None and catalog is not None:
        evidence.wake, evidence.members = worker.wake, adapter.member
        evidence.link_refusal = link_refusal(settings.evidence_link_hosts)
        handlers[EVIDENCE_CARD_JOB] = EvidenceCardDelivery(
            store,
            adapter,
            catalog,
            people=evidence.people,
            app_id=settings.microsoft_app_id,
            ambiguous=ambiguous,
        )
        handlers[REMINDER_JOB] = ReminderDelivery(store, adapter, catalog)
        mirror_closers.append(evidence.aclose)
    if attesting and catalog is not None:
        attest = attestation_handler(settings, store, catalog, breakers, sentinel)
        handlers[POLICY_ATTEST_JOB] = attest[0]
        mirror_closers += [attest[1]] if attest[1] is not None else []
    by_source = defender_wiring.triage_handler(settings, store, writer, incidents, defender)
    if by_source is not None:
        handlers[TRIAGE_JOB] = by_source
    if defender is not None:
        mirror_closers.append(defender.aclose)
    if incidents is not None:
        handlers[LINK_NOTE_JOB] = LinkNoteDelivery(incidents.client, store)
    handlers.update(itsm_wiring.handlers(settings, store, itsm, incidents))
    reader = deployments_wiring.deployment_reader(settings, store, incidents)
    if reader is not None:
        handlers[DEPLOYMENTS_JOB] = reader
    handlers.update(budgets_wiring.handlers(settings, store, adapter, itsm_client))
    handlers.update(held_jobs(settings))
    webhook = SentinelWebhook(
        WebhookVerifier(settings.webhook_secrets),
        writer,
        incident_from_webhook,
        max_bytes=settings.webhook_max_bytes,
        metrics=metrics,
        bearer=(bearer := _webhook_bearer(settings, http)),
    )
    app = web.Application(
        middlewares=[
            edge_middleware(metrics),
            *_recording(settings),
        ],
        client_max_size=settings.webhook_max_bytes + 1024,
    )
    app[STORE], app[WORKER], app[BREAKERS] = store, worker, breakers
    if catalog is not None:
        app[CATALOG] = catalog
        managers, closers = evidence_wiring.managers(settings, breakers, sentinel)
        app[REMINDERS] = EvidenceReminders(store, catalog, managers=managers, on_change=worker.wake)
        mirror_closers += closers
    # Cleanup runs in reverse: the worker stops (finishing its in-flight posts) before the
    # connector's session closes, so no post is cut off with its answer lost.
    if arm is not None:
        sandbox, port = arm, settings.sandbox_arm_port
        app.cleanup_ctx.append(lambda _app: sandboxes.sandbox_sentinel(sandbox, port))
    if sharepoint is not None:
        site = sharepoint
        app.cleanup_ctx.append(lambda _app: sandboxes.sandbox_sharepoint(site, settings, breakers))
    if snow_sandbox is not None:
        served = snow_sandbox
        app.cleanup_ctx.append(lambda _app: sandboxes.sandbox_servicenow(served, settings))
    if jsm_sandbox is not None:
        jira_sandbox = jsm_sandbox
        app.cleanup_ctx.append(lambda _app: sandboxes.sandbox_jsm(jira_sandbox, settings))
    if azurite:
        ready, billed = asyncio.Event(), sandboxes.sample_resources(arm)
        app[sandboxes.AZURITE_READY] = ready
        app.cleanup_ctx.append(lambda _app: sandboxes.sandbox_azurite(ready, settings, billed))
    app.cleanup_ctx.append(lambda _app: _bot_auth(http, validator, adapter))
    app.cleanup_ctx.append(lambda _app: _closing(sentinel, triage))
    app.cleanup_ctx.append(lambda _app: _closing_all(mirror_closers))
    app.cleanup_ctx.append(lambda _app: _services(settings, store, writer, worker))
    if incidents is not None:
        relay = CommentRelay(incidents.client, store)
        every = settings.sentinel_comments_seconds
        app.cleanup_ctx.append(lambda _app: _relaying(store, relay, every, metrics))
    if settings.sentinel_workspaces and incidents is not None:
        client = incidents.client
        app.cleanup_ctx.append(
            lambda _app: polling(settings, writer, store, breakers, metrics, client)
        )
    if defender is not None:
        from graph.defender_poller import polling as defender_polling

        polled_defender = defender.client
        app.cleanup_ctx.append(
            lambda _app: defender_polling(
                settings.defender, polled_defender, writer, store, metrics
            )
        )
    itsm_wiring.polling(app, settings, store, itsm, wake=worker.wake, metrics=metrics)
    if is_on(settings, "policy") and catalog is not None:
        polled, channel = catalog, settings.evidence_channel
        cards = evidence_poller.EvidenceCards(channel, card_job) if channel else None
        app.cleanup_ctx.append(
            lambda _app: evidence_poller.polling(
                settings,
                store,
                polled,
                breakers,
                period=quarter,
                cards=cards,
                on_change=worker.wake,
                connection=sentinel,
            )
        )
    if settings.cmdb.nightly:  # Azure resources → CMDB CIs, once a night, one replica
        nightly = cmdb_wiring.nightly_sync(settings, store, metrics)
        app[CMDB_NIGHTLY] = nightly
        every = settings.cmdb.check_seconds
        app.cleanup_ctx.append(lambda _app: cmdb_wiring.nightly(store, nightly, every))
    if REMINDERS in app and settings.evidence_reminder_seconds > 0:
        app.cleanup_ctx.append(lambda a: evidence_wiring.reminding(store, a[REMINDERS], settings))
    if settings.costs.enabled and settings.costs.nightly_at is not None:
        from wiring import costs as costs_wiring

        app.cleanup_ctx.append(lambda _app: costs_wiring.nightly(settings, store))
    if delta_wiring.watching_on(settings):  # evidence records changed outside Warden
        wake = worker.wake
        app.cleanup_ctx.append(
            lambda _app: delta_wiring.watching(settings, store, breakers, on_change=wake)
        )
    if playground:
        app.cleanup_ctx.append(lambda a: sandboxes.playground(a, settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get(
        "/metrics", metrics_handler(metrics, lambda: refresh_gauges(metrics, store, breakers))
    )
    app.router.add_get(
        "/readyz",
        readyz(
            lambda: readiness(
                store, worker, breakers, connectors=connectors, cmdb=settings.cmdb.nightly
            )
        ),
    )
    posture = PostureApi(store, catalog, bearer=bearer, sandbox=settings.mode is Mode.SANDBOX)
    app.router.add_get("/api/posture", posture.handle)
    app.router.add_post("/api/messages", adapter.handle)
    sentinel_on = enabled(settings, "sentinel")
    app.router.add_post("/api/webhooks/sentinel", webhook.handle if sentinel_on else sentinel_off)
    itsm_wiring.routes(app, settings, store, itsm, wake=worker.wake)
    budgets_wiring.route(app, settings, store, worker.wake)
    if settings.scim.enabled:  # Entra ID provisions the roster; leavers' work moves on
        from core.store.roster_leavers import reassign_leaver
        from web.scim import PREFIX as SCIM_PREFIX
        from web.scim import ScimService

        scim = ScimService(store, settings.scim, on_leaver=reassign_leaver)
        app.add_subapp(SCIM_PREFIX, scim.app())
    return app


def _recording(settings: Settings) -> list[Middleware]:
    """The recorder of accepted inbound requests, innermost, when ``WARDEN_RECORD_DIR`` is set."""
    if settings.record_dir is None:
        return []
    commands = {command.name.split()[0] for command in COMMANDS}
    return [recording_middleware(Recorder(settings.record_dir, Redactor(commands)))]


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


def _triage_desk(
    store: Store,
    sentinel: SentinelConnection | None,
    incidents: SentinelConnection | None,
    defender: defender_wiring.DefenderParts | None = None,
    *,
    roles: RoleGate,
    itsm: Sequence[ItsmSystem] = (),
) -> TriageDesk | None:
    """Triage from cards, when Warden can write to Sentinel or Defender XDR; responders
    checked by ``roles``. ``sentinel`` is the Azure identity, ``incidents`` Sentinel when on."""
    if sentinel is None or (incidents is None and defender is None):
        return None
    sources: dict[IncidentSource, DetailsSource] = {}
    if incidents is not None:
        sources[IncidentSource.SENTINEL] = SentinelDetails(incidents.client)
    if defender is not None:
        from graph.defender_triage import DefenderDetails

        sources[IncidentSource.DEFENDER] = DefenderDetails(defender.client)
    details = defender_wiring.DetailsBySource(store, sources)
    return TriageDesk(store, roles=roles, details=details, itsm=itsm)


async def _relaying(
    store: Store, relay: CommentRelay, every: float, metrics: Metrics
) -> AsyncIterator[None]:
    """Relay Sentinel comments to the cards' threads, on one replica at a time."""

    async def round_() -> None:
        try:
            await relay.relay_once()
        except WardenError as exc:  # the store or Sentinel failed: the next round tries again
            logging.getLogger(__name__).warning("comment relay round failed: %s", exc)
        else:
            metrics.sync_last_success.labels("sentinel.comments").set(time.time())

    async with leading(store, "sentinel-comments", round_, every=every):
        yield


async def _closing(
    sentinel: SentinelConnection | None, triage: TriageDesk | None
) -> AsyncIterator[None]:
    """Close the Sentinel and Graph clients after the worker has stopped."""
    try:
        yield
    finally:
        if triage is not None:
            await triage.aclose()
        if sentinel is not None:
            await sentinel.aclose()


async def _closing_all(closers: list[Callable[[], Awaitable[None]]]) -> AsyncIterator[None]:
    """Call ``closers`` at shutdown (after the worker stopped)."""
    try:
        yield
    finally:
        for close in closers:
            await close()


def _bot_token_validator(settings: Settings, http: httpx.AsyncClient) -> BotTokenValidator | None:
    """The validator of Teams' bearer tokens; none without an app id (sandbox mode)."""
    if not settings.microsoft_app_id:
        return None
    auth = settings.bot_auth
    return BotTokenValidator.for_bot(
        settings.microsoft_app_id,
        http,
        metadata_url=settings.bot_openid_metadata_url,
        clock_skew=auth.clock_skew_seconds,
        max_age=auth.keys_max_age_seconds,
        min_refresh=auth.min_refresh_seconds,
        timeout=auth.fetch_timeout_seconds,
    )


def _webhook_bearer(
    settings: Settings, http: httpx.AsyncClient
) -> Callable[[str | None], Awaitable[bool]] | None:
    """The Entra bearer check of webhooks, when tenants are allowed to use one."""
    if not settings.webhook_entra_tenant_ids:
        return None
    app_id = settings.microsoft_app_id
    validator = EntraTokenValidator(
        settings.webhook_entra_tenant_ids,
        [app_id, f"api://{app_id}"],
        http,
        metadata_url=settings.webhook_entra_metadata_url,
    )
    return validator.check


async def _bot_auth(
    http: httpx.AsyncClient, validator: BotTokenValidator | None, adapter: TeamsAdapter
) -> AsyncIterator[None]:
    if validator is not None:
        await validator.keys.refresh()  # warm up; a failure is logged, turns get 401 meanwhile
    try:
        yield
    finally:
        await adapter.close()
        await http.aclose()


async def _services(
    settings: Settings, store: Store, writer: IngestWriter, worker: OutboxWorker
) -> AsyncIterator[None]:
    store.claim_single_replica()
    if settings.auto_migrate:
        await store.upgrade()
    await writer.start()
    await worker.start()
    try:
        yield
    finally:
        await writer.stop()
        await worker.stop()
        await store.close()


cli = typer.Typer(help="Warden: Sentinel incidents and compliance evidence in Microsoft Teams.")
for area in (
    ops_commands,
    incident_commands,
    cmdb_commands,
    cost_commands,
    evidence_commands,
    manifest_commands,
    doctor_commands,
    replay_commands,
):
    area.register(cli)


@cli.callback(invoke_without_command=True)
def main(ctx: typer.Context) -> None:
    """Run ``serve`` when no command is given."""
    if ctx.invoked_subcommand is None:
        serve(playground=False)


@cli.command()
def serve(
    playground: Annotated[
        bool, typer.Option(help="Also start the Agents Playground (sandbox mode only).")
    ] = False,
) -> None:
    """Serve Warden's HTTP endpoints until interrupted."""
    settings = settings_or_exit()
    configure_logging()
    if playground and settings.mode is not Mode.SANDBOX:
        console.print("[red]--playground needs WARDEN_MODE=sandbox[/]")
        raise typer.Exit(2)
    console.print(
        f"Warden ({settings.mode.value}) on http://{settings.host}:{settings.port} "
        f"· store {settings.effective_database_url.split('://')[0]}"
    )
    app = create_app(settings, playground=playground)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)


@cli.command("settings")
def settings_doc() -> None:
    """Print the configuration table (every variable, its default and meaning) as Markdown."""
    typer.echo(settings_table(), nl=False)


if __name__ == "__main__":
    cli()
