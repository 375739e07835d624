"""Warden's composition root and command line.

``create_app(settings)`` builds the whole service from one validated ``Settings`` and wires
it explicitly; the store, the ingest writer, the outbox worker (and, with ``--playground``,
the Agents Playground) open and close in aiohttp's ``cleanup_ctx``. Nothing runs at import.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

import httpx
import typer
from aiohttp import web
from rich.console import Console
from rich.table import Table

from bot.adapter import TeamsAdapter
from bot.auth import BotTokenValidator
from bot.delivery import IncidentCardDelivery
from bot.handlers import WardenBot
from connectors.entra import EntraTokenValidator
from connectors.sentinel.mapping import incident_from_webhook
from connectors.sentinel.setup import polling
from core.breaker import Breakers
from core.errors import SettingsError
from core.ingest import CARD_JOB, IngestWriter
from core.logs import SCRUBBER, configure_logging
from core.metrics import Metrics
from core.pacing import Pacer
from core.settings import Mode, Settings, load_settings, settings_table
from core.signing import WebhookVerifier, sign
from core.store import admin_audit, outbox
from core.store.admin_audit import operator
from core.store.store import Store
from core.tracing import configure_tracing
from core.worker import OutboxWorker
from sandbox.sentinel_samples import sample_incident, updated_incident
from web.access import correlation_middleware
from web.health import healthz, openapi, readiness, readyz
from web.metrics import metrics_handler, metrics_middleware, refresh_gauges
from web.problems import problem_middleware
from web.webhooks import SentinelWebhook

T = TypeVar("T")
console = Console()

STORE = web.AppKey("store", Store)
BREAKERS = web.AppKey("breakers", Breakers)
WORKER = web.AppKey("worker", OutboxWorker)
PLAYGROUND_URL = web.AppKey("playground_url", str)


def create_app(settings: Settings, *, playground: bool = False) -> web.Application:
    """The Warden web application, wired from ``settings``.

    Construction does no I/O; the store, writer and worker start in ``cleanup_ctx`` when
    the application starts and stop when it shuts down.
    """
    SCRUBBER.register_settings(settings)  # before anything can log a secret
    SCRUBBER.pepper = settings.log_pepper.get_secret_value().encode()
    configure_tracing(settings.otlp_endpoint)
    store = Store.from_url(settings.effective_database_url, settings.store_timeout_seconds)
    breakers, metrics = Breakers(), Metrics()
    http = httpx.AsyncClient(timeout=settings.bot_auth.fetch_timeout_seconds)
    validator = _bot_token_validator(settings, http)
    pacer = Pacer(margin=settings.pacing.margin_seconds) if settings.pacing.enabled else None
    adapter = TeamsAdapter(
        settings,
        WardenBot(store, breakers),
        breakers,
        validator=validator,
        metrics=metrics,
        pacer=pacer,
    )
    worker = OutboxWorker(
        store,
        {CARD_JOB: IncidentCardDelivery(store, adapter)},
        settings.outbox,
        pacer=pacer,
        paced_kinds=frozenset({CARD_JOB}),
        metrics=metrics,
    )
    writer = IngestWriter(store, on_commit=worker.wake)
    webhook = SentinelWebhook(
        WebhookVerifier(settings.webhook_secrets),
        writer,
        incident_from_webhook,
        max_bytes=settings.webhook_max_bytes,
        metrics=metrics,
        bearer=_webhook_bearer(settings, http),
    )
    app = web.Application(
        middlewares=[correlation_middleware, metrics_middleware(metrics), problem_middleware],
        client_max_size=settings.webhook_max_bytes + 1024,
    )
    app[STORE], app[WORKER], app[BREAKERS] = store, worker, breakers
    # Cleanup runs in reverse: the worker stops (finishing its in-flight posts) before the
    # connector's session closes, so no post is cut off with its answer lost.
    app.cleanup_ctx.append(lambda _app: _bot_auth(http, validator, adapter))
    app.cleanup_ctx.append(lambda _app: _services(settings, store, writer, worker))
    if settings.sentinel_workspaces:
        app.cleanup_ctx.append(lambda _app: polling(settings, writer, store, breakers))
    if playground:
        app.cleanup_ctx.append(lambda a: _playground(a, settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get(
        "/metrics", metrics_handler(metrics, lambda: refresh_gauges(metrics, store, breakers))
    )
    app.router.add_get("/readyz", readyz(lambda: readiness(store, worker, breakers)))
    app.router.add_post("/api/messages", adapter.handle)
    app.router.add_post("/api/webhooks/sentinel", webhook.handle)
    return app


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


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/]")
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
        store = Store.from_url(_settings().effective_database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


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
        resource = updated_incident(json.loads(last.read_text(encoding="utf-8")))
    else:
        resource = sample_incident(severity=severity.capitalize(), title=title)
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


if __name__ == "__main__":
    cli()
