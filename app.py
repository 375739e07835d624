"""Warden's composition root and command line.

``create_app(settings)`` builds the whole service from one validated ``Settings`` and wires
it explicitly; the store, the ingest writer, the outbox worker (and, with ``--playground``,
the Agents Playground) open and close in aiohttp's ``cleanup_ctx``. Nothing runs at import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from bot.adapter import TeamsAdapter
from bot.auth import BotTokenValidator
from bot.delivery import CommentReplyDelivery, IncidentCardDelivery
from bot.evidence import EvidenceDesk, ReviewerGroups, card_job, quarter
from bot.evidence_delivery import EvidenceCardDelivery
from bot.evidence_reminders import LEADER_NAME as REMINDER_LEADER
from bot.evidence_reminders import EvidenceReminders, ReminderDelivery
from bot.handlers import WardenBot
from bot.links import LinkDesk
from bot.triage import TriageDesk
from bot.unfurl import Unfurler
from connectors.entra import EntraTokenValidator
from connectors.policy import evidence_poller
from connectors.policy.attest_sync import attestation_handler
from connectors.sentinel.comments import CommentRelay
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.links import LinkNoteDelivery
from connectors.sentinel.mapping import incident_from_webhook
from connectors.sentinel.reconcile import ReconcileRun
from connectors.sentinel.setup import credential as sentinel_credential
from connectors.sentinel.setup import polling, reconcile_now
from connectors.sentinel.triage import SentinelDetails, SentinelTriage
from connectors.servicenow import setup as servicenow_setup
from connectors.servicenow.cmdb import CmdbLookup
from core import campaigns as campaign_rules
from core.breaker import Breakers
from core.catalog import Catalog, load_catalog
from core.crypto import PayloadCipher, UnreadablePayload, generate_key
from core.errors import DeliveryError, SettingsError, WardenError
from core.ingest import CARD_JOB, IngestWriter
from core.leader import leading
from core.logs import SCRUBBER, configure_logging
from core.metrics import Metrics
from core.pacing import Pacer
from core.settings import Mode, Settings, load_settings, payload_keys, settings_table
from core.signing import WebhookVerifier, sign
from core.store import admin_audit, outbox
from core.store import campaigns as campaign_store
from core.store.admin_audit import operator
from core.store.cmdb import CMDB_JOB
from core.store.comments import COMMENT_JOB
from core.store.evidence import AUDIT_MIRROR_JOB, EVIDENCE_FILE_JOB, EVIDENCE_LIST_JOB
from core.store.evidence_cards import EVIDENCE_CARD_JOB, CardRole
from core.store.evidence_reminders import REMINDER_JOB
from core.store.links import LINK_NOTE_JOB
from core.store.posture import POLICY_ATTEST_JOB
from core.store.rekey import rotate, sealed_counts
from core.store.store import Store
from core.tracing import configure_tracing
from core.triage import TRIAGE_JOB
from core.worker import Handler, OutboxWorker
from graph.audit_export import ExportSummary, export, print_export_summary
from graph.audit_mirror import AuditMirror, wait_for_sharepoint
from graph.audit_verify import (
    SharePointAccess,
    VerifyReport,
    download_fetch,
    print_verify_report,
    sharepoint_access,
    verify_configured,
)
from graph.client import graph_client, graph_http
from graph.evidence_sync import EvidenceFiling, EvidenceListSync, link_fetch
from graph.managers import Managers
from graph.provision import ProvisionReport, print_report, provision
from graph.responders import ResponderGroups
from graph.sharepoint import SitePath
from sandbox.arm import ArmSandbox
from sandbox.embedded import change_incident as sandbox_change
from sandbox.embedded import create_incident as sandbox_create
from sandbox.embedded import (
    embedded_sentinel,
    embedded_servicenow,
    serving,
    serving_servicenow,
)
from sandbox.sentinel_samples import sample_incident, updated_incident
from sandbox.servicenow import ServiceNowSandbox
from web.access import correlation_middleware
from web.health import healthz, openapi, readiness, readyz
from web.metrics import metrics_handler, metrics_middleware, refresh_gauges
from web.posture import PostureApi
from web.problems import problem_middleware
from web.servicenow_webhook import ServiceNowWebhook
from web.webhooks import SentinelWebhook

T = TypeVar("T")
console = Console()

STORE = web.AppKey("store", Store)
BREAKERS = web.AppKey("breakers", Breakers)
WORKER = web.AppKey("worker", OutboxWorker)
PLAYGROUND_URL = web.AppKey("playground_url", str)
CATALOG = web.AppKey("catalog", Catalog)
REMINDERS = web.AppKey("reminders", EvidenceReminders)


def create_app(settings: Settings, *, playground: bool = False) -> web.Application:
    """The Warden web application, wired from ``settings``.

    Construction does no I/O; the store, writer and worker start in ``cleanup_ctx`` when
    the application starts and stop when it shuts down.
    """
    catalog = load_catalog(settings.requirements_file) if settings.requirements_file else None
    arm = None
    if playground and settings.mode is Mode.SANDBOX and not settings.sentinel_connected:
        settings, arm = embedded_sentinel(settings)  # so triage works in the Playground
    snow_sandbox = None
    if playground and settings.mode is Mode.SANDBOX and not settings.servicenow.enabled:
        settings, snow_sandbox = embedded_servicenow(settings)  # so links work in the Playground
    SCRUBBER.register_settings(settings)  # before anything can log a secret
    SCRUBBER.pepper = settings.log_pepper.get_secret_value().encode()
    configure_tracing(settings.otlp_endpoint)
    store = Store.from_url(
        settings.effective_database_url, settings.store_timeout_seconds, cipher=_cipher(settings)
    )
    breakers, metrics = Breakers(), Metrics()
    http = httpx.AsyncClient(timeout=settings.bot_auth.fetch_timeout_seconds)
    validator = _bot_token_validator(settings, http)
    pacer = Pacer(margin=settings.pacing.margin_seconds) if settings.pacing.enabled else None
    sentinel = (
        SentinelConnection.from_settings(settings, breakers)
        if settings.sentinel_connected
        else None
    )
    servicenow = servicenow_setup.connect(settings.servicenow, breakers)
    triage = _triage_desk(settings, store, breakers, sentinel, itsm=servicenow is not None)
    links = None
    if triage is not None:
        links = LinkDesk(store, triage, servicenow.client if servicenow is not None else None)
    unfurler = None
    if servicenow is not None:
        unfurler = Unfurler(str(settings.servicenow.instance_url), servicenow.client)
    attesting = bool(settings.policy_scopes) and catalog is not None  # as the poller runs
    evidence = _evidence_desk(
        settings, store, breakers, sentinel, catalog, itsm=servicenow is not None, attest=attesting
    )
    adapter = TeamsAdapter(
        settings,
        WardenBot(
            store, breakers, triage=triage, links=links, unfurler=unfurler, evidence=evidence
        ),
        breakers,
        validator=validator,
        metrics=metrics,
        pacer=pacer,
    )
    cmdb = servicenow is not None and sentinel is not None  # CIs need both
    handlers: dict[str, Handler] = {
        CARD_JOB: IncidentCardDelivery(
            store,
            adapter,
            triage=triage is not None,
            itsm=links is not None and links.connected,
            cmdb=cmdb,
        ),
        COMMENT_JOB: CommentReplyDelivery(store, adapter),
    }
    worker = OutboxWorker(
        store,
        handlers,
        settings.outbox,
        pacer=pacer,
        paced_kinds=frozenset({CARD_JOB, COMMENT_JOB, EVIDENCE_CARD_JOB, REMINDER_JOB}),
        metrics=metrics,
    )
    writer = IngestWriter(store, on_commit=worker.wake)
    if triage is not None:
        triage.wake = worker.wake
    handlers[AUDIT_MIRROR_JOB], mirror_closers = _audit_mirror(settings, store, breakers)
    handlers.update(_evidence_sync(settings, store, breakers, mirror_closers))
    if evidence is not None and catalog is not None:
        evidence.wake = worker.wake
        handlers[EVIDENCE_CARD_JOB] = EvidenceCardDelivery(store, adapter, catalog)
        handlers[REMINDER_JOB] = ReminderDelivery(store, adapter, catalog)
        mirror_closers.append(evidence.aclose)
    if attesting and catalog is not None:
        attest = attestation_handler(settings, store, catalog, breakers, sentinel)
        handlers[POLICY_ATTEST_JOB] = attest[0]
        mirror_closers += [attest[1]] if attest[1] is not None else []
    if sentinel is not None:
        handlers[TRIAGE_JOB] = SentinelTriage(
            sentinel.client, store, writer, max_attempts=settings.outbox.max_attempts
        )
        handlers[LINK_NOTE_JOB] = LinkNoteDelivery(sentinel.client, store)
    if servicenow is not None:
        handlers.update(servicenow_setup.handlers(servicenow, store))
        if sentinel is not None:
            handlers[CMDB_JOB] = CmdbLookup(sentinel.client, servicenow.client, store)
    webhook = SentinelWebhook(
        WebhookVerifier(settings.webhook_secrets),
        writer,
        incident_from_webhook,
        max_bytes=settings.webhook_max_bytes,
        metrics=metrics,
        bearer=(bearer := _webhook_bearer(settings, http)),
    )
    app = web.Application(
        middlewares=[correlation_middleware, metrics_middleware(metrics), problem_middleware],
        client_max_size=settings.webhook_max_bytes + 1024,
    )
    app[STORE], app[WORKER], app[BREAKERS] = store, worker, breakers
    if catalog is not None:
        app[CATALOG] = catalog
        managers, closers = _managers(settings, breakers, sentinel)
        app[REMINDERS] = EvidenceReminders(store, catalog, managers=managers, on_change=worker.wake)
        mirror_closers += closers
    # Cleanup runs in reverse: the worker stops (finishing its in-flight posts) before the
    # connector's session closes, so no post is cut off with its answer lost.
    if arm is not None:
        sandbox, port = arm, settings.sandbox_arm_port
        app.cleanup_ctx.append(lambda _app: _sandbox_sentinel(sandbox, port))
    if snow_sandbox is not None:
        served = snow_sandbox
        app.cleanup_ctx.append(lambda _app: _sandbox_servicenow(served, settings))
    app.cleanup_ctx.append(lambda _app: _bot_auth(http, validator, adapter))
    app.cleanup_ctx.append(lambda _app: _closing(sentinel, triage))
    app.cleanup_ctx.append(lambda _app: _closing_all(mirror_closers))
    app.cleanup_ctx.append(lambda _app: _services(settings, store, writer, worker))
    if sentinel is not None:
        relay = CommentRelay(sentinel.client, store)
        every = settings.sentinel_comments_seconds
        app.cleanup_ctx.append(lambda _app: _relaying(store, relay, every, metrics))
    if settings.sentinel_workspaces:
        client = sentinel.client if sentinel is not None else None
        app.cleanup_ctx.append(
            lambda _app: polling(settings, writer, store, breakers, metrics, client)
        )
    if servicenow is not None:
        snow = servicenow
        app.cleanup_ctx.append(
            lambda _app: servicenow_setup.polling(
                snow, store, settings.servicenow, on_change=worker.wake, metrics=metrics
            )
        )
    if settings.policy_scopes and catalog is not None:
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
    if REMINDERS in app and settings.evidence_reminder_seconds > 0:
        app.cleanup_ctx.append(lambda a: _reminding(store, a[REMINDERS], settings))
    if playground:
        app.cleanup_ctx.append(lambda a: _playground(a, settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get(
        "/metrics", metrics_handler(metrics, lambda: refresh_gauges(metrics, store, breakers))
    )
    app.router.add_get("/readyz", readyz(lambda: readiness(store, worker, breakers)))
    posture = PostureApi(store, catalog, bearer=bearer, sandbox=settings.mode is Mode.SANDBOX)
    app.router.add_get("/api/posture", posture.handle)
    app.router.add_post("/api/messages", adapter.handle)
    app.router.add_post("/api/webhooks/sentinel", webhook.handle)
    if servicenow is not None and settings.servicenow.webhook_secrets:
        secrets = [s.get_secret_value() for s in settings.servicenow.webhook_secrets]
        snow_webhook = ServiceNowWebhook(
            WebhookVerifier(secrets),
            store,
            servicenow_setup.webhook_parser(settings.servicenow),
            max_bytes=settings.webhook_max_bytes,
            on_change=worker.wake,
        )
        app.router.add_post("/api/webhooks/servicenow", snow_webhook.handle)
    return app


def _triage_desk(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    sentinel: SentinelConnection | None,
    *,
    itsm: bool = False,
) -> TriageDesk | None:
    """Triage from cards, when Warden can write to Sentinel; responders checked in Graph."""
    if sentinel is None:
        return None
    responders = None
    if settings.responder_group_ids:
        http = graph_http(breakers, tls_verify(settings))
        graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
        responders = ResponderGroups(
            graph, settings.responder_group_ids, ttl=settings.responder_cache_seconds, http=http
        )
    return TriageDesk(
        store, responders=responders, details=SentinelDetails(sentinel.client), itsm=itsm
    )


def _evidence_desk(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    sentinel: SentinelConnection | None,
    catalog: Catalog | None,
    *,
    itsm: bool = False,
    attest: bool = False,
) -> EvidenceDesk | None:
    """Evidence requests from chat, when there is a catalog; reviewers checked in Graph when
    Warden has an Azure credential (without one, as in the sandbox, anyone may review).
    ``itsm``: ServiceNow is connected, so rejections and approvals are written there;
    ``attest``: Azure Policy is, so approved policy requests are attested there."""
    if catalog is None:
        return None
    if sentinel is None:
        return EvidenceDesk(store, catalog, itsm=itsm, attest=attest)
    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    ttl = settings.responder_cache_seconds
    reviewers = ReviewerGroups(
        lambda groups: ResponderGroups(graph, groups, ttl=ttl), close=http.aclose
    )
    return EvidenceDesk(store, catalog, reviewers=reviewers, itsm=itsm, attest=attest)


def _managers(
    settings: Settings, breakers: Breakers, sentinel: SentinelConnection | None
) -> tuple[Managers | None, list[Callable[[], Awaitable[None]]]]:
    """Managers in Graph for escalations when Warden has an Azure credential, and what to
    close after the worker; without one overdue evidence goes to the catalog's target."""
    if sentinel is None:
        return None, []
    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    return Managers(graph), [http.aclose]


async def _reminding(
    store: Store, reminders: EvidenceReminders, settings: Settings
) -> AsyncIterator[None]:
    """Send evidence reminders and escalations, on one replica at a time."""

    async def round_() -> None:
        try:
            await reminders.run_once()
        except WardenError as exc:  # the store failed: the next round tries again
            logging.getLogger(__name__).warning("evidence reminder round failed: %s", exc)

    every = settings.evidence_reminder_seconds
    async with leading(store, REMINDER_LEADER, round_, every=every):
        yield


async def _sandbox_servicenow(snow: ServiceNowSandbox, settings: Settings) -> AsyncIterator[None]:
    """Serve the sandbox ServiceNow for the Playground while Warden runs."""
    async with serving_servicenow(snow, settings) as running:
        console.print(f"Sandbox ServiceNow (Table API, records page): {running.url}")
        yield


async def _sandbox_sentinel(arm: ArmSandbox, port: int) -> AsyncIterator[None]:
    """Serve the sandbox Sentinel for the Playground while Warden runs."""
    async with serving(arm, port):
        console.print(f"Sandbox Sentinel (ARM, Entra ID, Graph): https://127.0.0.1:{port}")
        yield


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


def _audit_mirror(
    settings: Settings, store: Store, breakers: Breakers
) -> tuple[Handler, list[Callable[[], Awaitable[None]]]]:
    """The ``audit.mirror`` handler and what to close after the worker: the Audit Log list
    when SharePoint is configured; else the jobs wait (pending) until it is."""
    if not settings.sharepoint_site:
        return wait_for_sharepoint, []
    http = graph_http(breakers, tls_verify(settings))
    credential = sentinel_credential(settings)
    graph = graph_client(credential, http, base_url=settings.graph_endpoint)
    mirror = AuditMirror(store, graph, SitePath.parse(settings.sharepoint_site))
    return mirror, [http.aclose, credential.close]


def _evidence_sync(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    closers: list[Callable[[], Awaitable[None]]],
) -> dict[str, Handler]:
    """The ``evidence.file`` and ``evidence.list`` handlers (SharePoint configured), else
    handlers that keep the jobs waiting; what they open is added to ``closers``."""
    if not settings.sharepoint_site:
        return {EVIDENCE_FILE_JOB: wait_for_sharepoint, EVIDENCE_LIST_JOB: wait_for_sharepoint}
    site = SitePath.parse(settings.sharepoint_site)
    http = graph_http(breakers, tls_verify(settings))
    credential = sentinel_credential(settings)
    graph = graph_client(credential, http, base_url=settings.graph_endpoint)
    filing = EvidenceFiling(
        store,
        graph,
        site,
        http,
        link_fetch=link_fetch(settings.evidence_link_hosts),
        download_fetch=download_fetch(site, settings.graph_endpoint, tls_verify(settings)),
    )
    closers += [http.aclose, credential.close]
    return {EVIDENCE_FILE_JOB: filing, EVIDENCE_LIST_JOB: EvidenceListSync(store, graph, site)}


async def _closing_all(closers: list[Callable[[], Awaitable[None]]]) -> AsyncIterator[None]:
    """Call ``closers`` at shutdown (after the worker stopped)."""
    try:
        yield
    finally:
        for close in closers:
            await close()


def _cipher(settings: Settings) -> PayloadCipher:
    """The store's cipher; its keys are registered with the log scrubber first."""
    keys = payload_keys(settings)  # SettingsError in production mode without keys
    for key in keys:
        SCRUBBER.register_secret(key)
    return PayloadCipher(keys)


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


async def _playground(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    from sandbox.playground import default_config, start_playground  # only with --playground

    endpoint = f"http://127.0.0.1:{settings.port}/api/messages"
    workdir = settings.var_dir / "playground"
    workdir.mkdir(parents=True, exist_ok=True)
    async with start_playground(
        endpoint, workdir=workdir.resolve(), port=settings.playground_port, config=default_config()
    ) as running:
        app[PLAYGROUND_URL] = running.browser_url
        console.print(
            f"\n[bold green]Teams (Agents Playground):[/] {running.browser_url}\n"
            "Open it, pick the General channel of My Team, add Warden to it, type "
            "[bold]@Warden subscribe incidents[/], then in another terminal run "
            "[bold].venv/bin/python app.py demo incident[/].\n"
        )
        yield


cli = typer.Typer(help="Warden: Sentinel incidents and compliance evidence in Microsoft Teams.")
outbox_cli = typer.Typer(help="Inspect and retry outbound deliveries.")
db_cli = typer.Typer(help="Database maintenance.")
demo_cli = typer.Typer(help="Send realistic sample data to a running Warden.")
cli.add_typer(outbox_cli, name="outbox")
cli.add_typer(db_cli, name="db")
dlq_cli = typer.Typer(help="The dead-letter queue: see, replay and purge failed work.")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(dlq_cli, name="dlq")
keys_cli = typer.Typer(help="Encryption keys of stored data: generate one, rotate to the first.")
cli.add_typer(keys_cli, name="keys")
sentinel_cli = typer.Typer(help="Microsoft Sentinel: reconcile its incidents now.")
cli.add_typer(sentinel_cli, name="sentinel")
catalog_cli = typer.Typer(help="The requirement catalog: check it, see what Warden reads.")
cli.add_typer(catalog_cli, name="catalog")
audit_cli = typer.Typer(help="The evidence audit trail in SharePoint: verify it, export it.")
cli.add_typer(audit_cli, name="audit")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None


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
    settings = _settings()
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


def _on_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` against the configured store, opened for this command only."""

    async def run() -> T:
        settings = _settings()
        store = Store.from_url(settings.effective_database_url, cipher=_cipher(settings))
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except UnreadablePayload as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None


def _jobs_table(rows: list[outbox.JobRow]) -> Table:
    table = Table("id", "kind", "status", "attempts")
    table.add_column("conversation", overflow="fold")
    table.add_column("updated")
    table.add_column("reason", overflow="fold", ratio=2)
    for row in rows:
        table.add_row(
            str(row.id),
            row.kind,
            row.status,
            str(row.attempts),
            row.conversation_id or "",
            row.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.last_error or "",
        )
    return table


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations."""

    async def upgrade(store: Store) -> dict[str, object]:
        await store.upgrade()
        return await store.check()

    console.print(f"database at revision {_on_store(upgrade).get('revision')}")


@outbox_cli.command("list")
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help="pending, running, done, dead or quarantined")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List the newest outbox jobs."""
    rows = _on_store(lambda store: outbox.list_jobs(store, status, limit))
    console.print(_jobs_table(rows) if rows else "no jobs")


@outbox_cli.command("retry")
def outbox_retry(job_id: int) -> None:
    """Make a dead, quarantined or waiting job due again now, with fresh attempts."""
    if not _on_store(lambda store: outbox.retry(store, job_id, actor=operator())):
        console.print(f"[red]no dead or pending job {job_id}[/]")
        raise typer.Exit(1)
    console.print(f"job {job_id} will be retried now")


@dlq_cli.command("list")
def dlq_list(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100) -> None:
    """The dead-letter queue: dead (attempts spent) and quarantined (not retryable) jobs."""
    rows = _on_store(lambda store: outbox.list_jobs(store, outbox.DLQ, limit))
    console.print(_jobs_table(rows) if rows else "the dead-letter queue is empty")


@dlq_cli.command("show")
def dlq_show(job_id: int) -> None:
    """One job in full: its payload, attempts and the reason it stopped."""
    row = _on_store(lambda store: outbox.get_job(store, job_id))
    if row is None:
        console.print(f"[red]no job {job_id}[/]")
        raise typer.Exit(1)
    console.print(_jobs_table([row]))
    console.print_json(json.dumps(row.payload))


@dlq_cli.command("replay")
def dlq_replay(
    job_id: Annotated[int | None, typer.Argument(help="The job to replay.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every DLQ job.")] = False,
) -> None:
    """Send DLQ jobs again (idempotent: a replayed job leaves the queue)."""
    if replay_all == (job_id is not None):
        console.print("[red]give a job id or --all[/]")
        raise typer.Exit(2)
    if job_id is None:
        count = _on_store(lambda store: outbox.replay_all(store, actor=operator()))
        console.print(f"{count} job(s) replayed")
    elif _on_store(lambda store: outbox.replay(store, job_id, actor=operator())):
        console.print(f"job {job_id} replayed")
    else:
        console.print(f"job {job_id} is not in the dead-letter queue; nothing to replay")


@dlq_cli.command("purge")
def dlq_purge(job_id: int) -> None:
    """Delete one DLQ job for good."""
    if not _on_store(lambda store: outbox.purge(store, job_id, actor=operator())):
        console.print(f"[red]job {job_id} is not in the dead-letter queue[/]")
        raise typer.Exit(1)
    console.print(f"job {job_id} purged")


@cli.command("admin-log")
def admin_log(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """Who subscribed, unsubscribed, replayed, retried or purged what, and when."""
    rows = _on_store(lambda store: admin_audit.entries(store, limit))
    table = Table("when (UTC)", "who", "action", "target", "details")
    for row in rows:
        details = json.dumps(row.details) if row.details else ""
        table.add_row(
            row.at.strftime("%Y-%m-%d %H:%M:%S"), row.actor, row.action, row.target, details
        )
    console.print(table if rows else "no administrative actions recorded")


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new key: put it first in WARDEN_ENCRYPTION_KEYS (see docs/operator.md)."""
    typer.echo(generate_key())


@keys_cli.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt every stored row under the first key (idempotent, safe while Warden runs)."""

    async def run(store: Store) -> dict[str, int]:
        if not (await store.check()).get("current"):
            console.print("[red]the database is not migrated: run `python app.py db upgrade`[/]")
            raise typer.Exit(1)
        totals = await sealed_counts(store)
        with Progress(console=console) as progress:
            tasks = {kind: progress.add_task(kind, total=total) for kind, total in totals.items()}
            report = await rotate(
                store,
                actor=operator(),
                batch_size=batch_size,
                on_batch=lambda kind, rows: progress.advance(tasks[kind], rows),
            )
            for kind, task in tasks.items():  # rows pruned meanwhile leave no bar short
                progress.update(task, completed=totals[kind])
        return report.rewritten

    rewritten = _on_store(run)
    done = ", ".join(f"{kind} {count}" for kind, count in rewritten.items())
    console.print(f"re-encrypted under the first key: {done}")


@cli.command("provision")
def provision_sharepoint() -> None:
    """Create or update, idempotently, the SharePoint library and lists evidence is filed in."""
    settings = _settings()

    async def run() -> ProvisionReport:
        credential = sentinel_credential(settings)
        try:
            return await provision(settings, credential, verify=tls_verify(settings))
        finally:
            await credential.close()

    try:
        report = asyncio.run(run())
    except (SettingsError, DeliveryError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2 if isinstance(exc, SettingsError) else 1) from None
    print_report(report, console)
    if report.problems:
        raise typer.Exit(1)


def _on_sharepoint(
    work: Callable[[SharePointAccess, Store | None], Awaitable[T]], *, with_store: bool = False
) -> T:
    """Run ``work`` on ``WARDEN_SHAREPOINT_SITE`` with the credentials ``provision`` uses."""
    settings = _settings()

    async def run(store: Store | None) -> T:
        credential = sentinel_credential(settings)
        try:
            async with sharepoint_access(
                settings, credential, verify=tls_verify(settings)
            ) as access:
                return await work(access, store)
        finally:
            await credential.close()

    try:
        return _on_store(run) if with_store else asyncio.run(run(None))
    except (WardenError, OSError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2 if isinstance(exc, SettingsError) else 1) from None


@audit_cli.command("verify")
def audit_verify(
    with_store: Annotated[
        bool, typer.Option("--store", help="Also compare with Warden's store (pending mirrors).")
    ] = False,
) -> None:
    """Re-read the Audit Log and the evidence files; name the first that does not match."""

    async def run(access: SharePointAccess, store: Store | None) -> VerifyReport:
        return await verify_configured(access, store)

    report = _on_sharepoint(run, with_store=with_store)
    print_verify_report(report, console)
    if not report.ok:
        raise typer.Exit(1)


@audit_cli.command("export")
def audit_export(
    requirement: Annotated[str, typer.Option(help="The requirement id, e.g. ISO27001-A.8.13.")],
    period: Annotated[str, typer.Option(help="The period, e.g. 2026-Q4.")],
    out: Annotated[Path, typer.Argument(help="The zip to write.")],
) -> None:
    """Write a zip of a requirement's audit entries, evidence files and a hash manifest."""

    async def run(access: SharePointAccess, _: Store | None) -> ExportSummary:
        library = await access.library()
        return await export(
            access.graph,
            access.site,
            requirement=requirement,
            period=period,
            out=out,
            library=library,
        )

    print_export_summary(_on_sharepoint(run), console)


@sentinel_cli.command("reconcile")
def sentinel_reconcile(
    restart: Annotated[
        bool, typer.Option("--restart", help="Start a new run instead of resuming a stopped one.")
    ] = False,
) -> None:
    """Walk every open Sentinel incident now through ingest (a stopped run resumes)."""
    settings = _settings()
    if not settings.sentinel_workspaces:
        console.print(
            "[red]no Sentinel workspace is configured: set WARDEN_SENTINEL_WORKSPACES "
            "(subscription/resourceGroup/workspace, comma-separated)[/]"
        )
        raise typer.Exit(2)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task, first = progress.add_task("reconciling", total=None), True

        def show(run: ReconcileRun) -> None:
            nonlocal first
            if first and run.pages:
                console.print(f"resuming reconcile {run.run_id} after {run.pages} page(s)")
            first, count = False, len(run.workspaces)
            progress.update(
                task,
                description=f"workspace {min(run.workspace + 1, count)}/{count} · "
                f"{run.pages} page(s) · {run.read} open incident(s) · {run.changed} changed",
            )

        try:
            run = _on_store(
                lambda store: reconcile_now(settings, store, restart=restart, progress=show)
            )
        except WardenError as exc:
            console.print(f"[red]reconcile stopped: {escape(str(exc))}[/] (run it again to resume)")
            raise typer.Exit(1) from None
    skipped = f", {len(run.skipped)} workspace(s) skipped (see the log)" if run.skipped else ""
    console.print(
        f"reconcile {run.run_id} finished: {run.read} open incident(s) read, "
        f"{run.changed} changed, in {run.pages} page(s){skipped}"
    )


@catalog_cli.command("check")
def catalog_check(
    file: Annotated[
        Path | None, typer.Argument(help="The catalog; default WARDEN_REQUIREMENTS_FILE.")
    ] = None,
) -> None:
    """Validate a requirement catalog: its requirements as a table, or each error's line."""
    if file is None:
        file = _settings().requirements_file  # a bad configured catalog stops here (exit 2)
    if file is None:
        console.print("[red]no catalog: give FILE or set WARDEN_REQUIREMENTS_FILE[/]")
        raise typer.Exit(2)
    try:
        catalog = load_catalog(file)
    except SettingsError as exc:
        console.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table("title", "policies", "evidence", "owner", "approvals", "due", "escalation")
    table.columns.insert(0, Column("id", no_wrap=True))
    for req in catalog:
        policies = len(req.policy_definitions) + len(req.policy_assignments)
        reminders = ", ".join(str(day) for day in req.reminders) or "none"
        table.add_row(
            req.id,
            req.title,
            str(policies) if policies else "by hand",
            ", ".join(kind.value for kind in req.evidence),
            str(req.owner),
            f"{req.approvals} of {len(req.reviewers)} group(s)",
            f"{req.due_days} d, remind {reminders}",
            str(req.escalation or "none"),
        )
    console.print(table)
    console.print(f"{len(catalog)} requirement(s) in {file}: valid")


@demo_cli.command("incident")
def demo_incident(
    severity: Annotated[str, typer.Option(help="Informational, Low, Medium or High")] = "High",
    title: Annotated[str | None, typer.Option(help="The incident's title.")] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Send a newer version of the last demo incident.")
    ] = False,
    url: Annotated[str | None, typer.Option(help="Warden's base URL.")] = None,
) -> None:
    """Sign and post a realistic Sentinel incident to a running Warden."""
    settings = _settings()
    last = settings.var_dir / "demo-last-incident.json"
    if update:
        if not last.exists():
            console.print("[red]no demo incident yet: run `python app.py demo incident` first[/]")
            raise typer.Exit(1)
        previous = json.loads(last.read_text(encoding="utf-8"))
        changed = sandbox_change(settings, previous["name"], {"status": "Active"})
        resource = changed or updated_incident(previous)
    else:
        resource = sample_incident(severity=severity.capitalize(), title=title)
        props = resource["properties"]
        wanted = {k: props[k] for k in ("title", "description", "severity") if props.get(k)}
        resource = sandbox_create(settings, wanted) or resource  # in the sandbox Sentinel too
    body = json.dumps(resource).encode()
    headers = {"content-type": "application/json", **sign(settings.webhook_secrets[0], body)}
    base = url or f"http://{settings.host}:{settings.port}"
    try:
        answer = httpx.post(f"{base}/api/webhooks/sentinel", content=body, headers=headers)
    except httpx.HTTPError as exc:
        console.print(f"[red]Warden is not reachable at {base}: {exc}[/]")
        raise typer.Exit(1) from None
    if answer.status_code != 202:
        console.print(f"[red]{answer.status_code}: {answer.text}[/]")
        raise typer.Exit(1)
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(json.dumps(resource), encoding="utf-8")
    props = resource["properties"]
    console.print(
        f"sent incident #{props['incidentNumber']} ({props['severity']}, {props['status']}): "
        f"{props['title']}"
    )


campaign_cli = typer.Typer(help="Evidence campaigns: a request for every requirement of a period.")
cli.add_typer(campaign_cli, name="campaign")


def _campaign_catalog(settings: Settings) -> Catalog:
    """The configured catalog, or exit 2 saying why there is none."""
    if settings.requirements_file is None:
        console.print("[red]no catalog: set WARDEN_REQUIREMENTS_FILE[/]")
        raise typer.Exit(2)
    return load_catalog(settings.requirements_file)


@campaign_cli.command("start")
def campaign_start(
    name: Annotated[str, typer.Argument(help="The campaign, e.g. '2026-Q4 ISO review'.")],
    requirements: Annotated[str | None, typer.Option(help="Requirement ids: ID,ID,…")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every requirement of the catalog.")] = False,
    period: Annotated[str | None, typer.Option(help="e.g. 2026-Q4; default this quarter.")] = None,
    due: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Default: each due_days.")
    ] = None,
) -> None:
    """Open an evidence request for each requirement (idempotent: a re-run opens nothing new)."""
    settings, today = _settings(), datetime.now(UTC).date()
    try:
        if every == (requirements is not None):
            raise campaign_rules.CampaignRefused("give --requirements ID,ID,… or --all")
        plan = campaign_rules.plan(
            _campaign_catalog(settings),
            name,
            requirement_ids=campaign_rules.split_ids(requirements),
            period=period,
            due=due.date() if due else None,
            today=today,
        )

        async def run(store: Store) -> campaign_rules.StartReport:
            channel = await campaign_store.known_channel(store, settings.evidence_channel)
            with Progress(console=console) as progress:
                task = progress.add_task("opening requests", total=len(plan.requirements))
                return await campaign_store.start(
                    store,
                    plan,
                    actor=operator(),
                    today=today,
                    default_period=quarter(today),
                    owner_card=None
                    if channel is None
                    else lambda key: card_job(key, CardRole.OWNER, channel, by_key=True),
                    on_step=lambda _id, _created: progress.advance(task),
                )

        report = _on_store(run)
    except (campaign_rules.CampaignRefused, SettingsError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    cards = f", {report.carded} owner card(s) queued" if report.carded else ", no cards posted"
    console.print(
        f"campaign {escape(report.campaign.name)} ({report.campaign.period}): "
        f"{report.opened} opened, {report.already_open} already open{cards}"
    )


@campaign_cli.command("status")
def campaign_status(
    name: Annotated[str | None, typer.Argument(help="The campaign; default: all.")] = None,
) -> None:
    """A campaign's requests, totals and completion; without NAME, every campaign."""
    today = datetime.now(UTC).date()
    if name is None:
        rows = _on_store(lambda store: campaign_store.overview(store, today))
        table = Table("campaign", "period", "requirements", "approved", "overdue", "completion")
        for campaign, sums in rows:
            table.add_row(
                escape(campaign.name),
                campaign.period,
                str(sums.requirements),
                str(sums.approved),
                str(sums.overdue),
                f"{sums.completion:.0f}%",
            )
        console.print(table if rows else "no campaigns")
        return
    found = _on_store(lambda store: campaign_store.progress(store, name))
    if found is None:
        console.print(f"[red]no campaign {escape(name)!r}[/]")
        raise typer.Exit(1)
    console.print(_campaign_table(*found, today))


def _campaign_table(
    campaign: campaign_rules.Campaign, lines: list[campaign_rules.Line], today: date
) -> Table:
    sums = campaign_rules.totals(lines, today)
    table = Table(
        "requirement",
        "status",
        "owner",
        "due",
        "approvals",
        "days late",
        title=f"{escape(campaign.name)} ({campaign.period})",
        caption=f"{sums.requested} requested · {sums.submitted} submitted · "
        f"{sums.approved} approved · {sums.rejected} rejected · {sums.overdue} overdue · "
        f"{sums.completion:.0f}% complete",
    )
    for line in lines:
        req = line.request
        table.add_row(
            line.requirement_id,
            req.status.value if req else "not requested",
            req.owner if req else "",
            req.due.isoformat() if req else "",
            f"{line.approvals}/{req.approvals_needed}" if req else "",
            str(line.days_late(today) or ""),
        )
    return table


if __name__ == "__main__":
    cli()
