"""Warden's composition root and command line.

``create_app(settings)`` builds the whole service from one validated ``Settings`` and wires
it explicitly; the store, the ingest writer, the outbox worker (and, with ``--playground``,
the Agents Playground) open and close in aiohttp's ``cleanup_ctx``. Nothing runs at import.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import httpx
import typer
from aiohttp import web

from bot.adapter import TeamsAdapter
from bot.evidence import card_job, quarter
from bot.evidence_reminders import EvidenceReminders
from bot.handlers import WardenBot
from bot.receipts import ActivityReceipts
from cli import cmdb as cmdb_commands
from cli import costs as cost_commands
from cli import doctor as doctor_commands
from cli import evidence as evidence_commands
from cli import incidents as incident_commands
from cli import manifest as manifest_commands
from cli import ops as ops_commands
from cli import replay as replay_commands
from cli.common import console, settings_or_exit
from connectors.policy import evidence_poller
from connectors.registry import enabled, held_jobs, is_on, off_messages, snapshot
from connectors.resourcegraph.nightly import CmdbNightly
from connectors.sentinel.comments import CommentRelay
from connectors.sentinel.connection import SentinelConnection
from connectors.sentinel.setup import polling
from connectors.ssrf_rules import link_refusal
from core.breaker import Breakers
from core.catalog import Catalog, load_catalog
from core.ingest import IngestWriter
from core.logs import SCRUBBER, configure_logging
from core.metrics import Metrics
from core.pacing import Pacer
from core.settings import Mode, Settings, payload_cipher
from core.settings.table import settings_table
from core.store.evidence_audit import AUDIT_MIRROR_JOB
from core.store.store import Store
from core.tracing import configure_tracing
from core.worker import OutboxWorker
from wiring import auth as auth_wiring
from wiring import budgets as budgets_wiring
from wiring import cmdb as cmdb_wiring
from wiring import defender as defender_wiring
from wiring import delivery, lifecycle, routes, sandboxes
from wiring import delta as delta_wiring
from wiring import evidence as evidence_wiring
from wiring import itsm as itsm_wiring
from wiring import roles as roles_wiring

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
    validator = auth_wiring.bot_token_validator(settings, http)
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
    triage = defender_wiring.triage_desk(
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
    ambiguous = delivery.ambiguous_posts(settings, sentinel, breakers, adapter, metrics)
    handlers = delivery.card_handlers(
        settings,
        store,
        adapter,
        triage=triage,
        links=links,
        itsm=itsm,
        incidents=incidents,
        ambiguous=ambiguous,
    )
    worker = OutboxWorker(
        store,
        handlers,
        settings.outbox,
        pacer=pacer,
        paced_kinds=delivery.PACED_JOBS,
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
    handlers.update(
        delivery.evidence_handlers(
            settings,
            store,
            breakers,
            sentinel,
            catalog,
            adapter=adapter,
            evidence=evidence,
            attesting=attesting,
            ambiguous=ambiguous,
            closers=mirror_closers,
        )
    )
    handlers.update(
        delivery.connector_handlers(
            settings,
            store,
            writer,
            adapter=adapter,
            incidents=incidents,
            defender=defender,
            itsm=itsm,
            closers=mirror_closers,
        )
    )
    handlers.update(held_jobs(settings))  # last: a held connector's jobs wait in the outbox
    bearer = auth_wiring.webhook_bearer(settings, http)
    webhook = routes.sentinel_webhook(settings, writer, metrics, bearer)
    app = web.Application(
        middlewares=routes.middlewares(settings, metrics),
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
    app.cleanup_ctx.append(lambda _app: lifecycle.bot_auth(http, validator, adapter))
    app.cleanup_ctx.append(lambda _app: lifecycle.closing(sentinel, triage))
    app.cleanup_ctx.append(lambda _app: lifecycle.closing_all(mirror_closers))
    app.cleanup_ctx.append(lambda _app: lifecycle.services(settings, store, writer, worker))
    if incidents is not None:
        relay = CommentRelay(incidents.client, store)
        every = settings.sentinel_comments_seconds
        app.cleanup_ctx.append(lambda _app: lifecycle.relaying(store, relay, every, metrics))
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
    routes.add(
        app,
        settings,
        store=store,
        worker=worker,
        breakers=breakers,
        metrics=metrics,
        connectors=connectors,
        catalog=catalog,
        adapter=adapter,
        webhook=webhook,
        bearer=bearer,
        itsm=itsm,
    )
    return app


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
