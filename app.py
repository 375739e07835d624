"""Warden's composition root and command line.

``create_app(settings)`` builds the whole service from one validated ``Settings`` and wires
it explicitly; the store, the ingest writer, the outbox worker (and, with ``--playground``,
the Agents Playground) open and close in aiohttp's ``cleanup_ctx``. Nothing runs at import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from aiohttp import web
from rich.console import Console
from rich.table import Table

from bot.adapter import TeamsAdapter
from bot.delivery import IncidentCardDelivery
from bot.handlers import WardenBot
from connectors.sentinel.mapping import incident_from_webhook
from core.errors import SettingsError
from core.ingest import CARD_JOB, IngestWriter
from core.settings import Mode, Settings, load_settings, settings_table
from core.signing import WebhookVerifier, sign
from core.store import outbox
from core.store.store import Store
from core.worker import OutboxWorker
from sandbox.sentinel_samples import sample_incident, updated_incident
from web.health import healthz, readyz
from web.problems import problem_middleware
from web.webhooks import SentinelWebhook

log = logging.getLogger("warden")
console = Console()
ROOT = Path(__file__).resolve().parent

STORE = web.AppKey("store", Store)
WORKER = web.AppKey("worker", OutboxWorker)
PLAYGROUND_URL = web.AppKey("playground_url", str)


def create_app(settings: Settings, *, playground: bool = False) -> web.Application:
    """The Warden web application, wired from ``settings``.

    Construction does no I/O; the store, writer and worker start in ``cleanup_ctx`` when
    the application starts and stop when it shuts down.
    """
    store = Store.from_url(settings.effective_database_url)
    adapter = TeamsAdapter(settings, WardenBot(store))
    worker = OutboxWorker(store, {CARD_JOB: IncidentCardDelivery(store, adapter)}, settings.outbox)
    writer = IngestWriter(store, on_commit=worker.wake)
    webhook = SentinelWebhook(
        WebhookVerifier(settings.webhook_secrets),
        writer,
        incident_from_webhook,
        max_bytes=settings.webhook_max_bytes,
    )
    app = web.Application(
        middlewares=[problem_middleware], client_max_size=settings.webhook_max_bytes + 1024
    )
    app[STORE], app[WORKER] = store, worker
    app.cleanup_ctx.append(lambda _app: _services(settings, store, writer, worker))
    if playground:
        app.cleanup_ctx.append(lambda a: _playground(a, settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(lambda: _readiness(store, worker)))
    app.router.add_post("/api/messages", adapter.handle)
    app.router.add_post("/api/webhooks/sentinel", webhook.handle)
    return app


async def _services(
    settings: Settings, store: Store, writer: IngestWriter, worker: OutboxWorker
) -> AsyncIterator[None]:
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


async def _readiness(store: Store, worker: OutboxWorker) -> dict[str, Any]:
    store_facts = await store.check()
    counts = await outbox.counts(store) if store_facts.get("reachable") else {}
    return {
        "store": {"ok": bool(store_facts.get("current")), **store_facts},
        "worker": {"ok": worker.running},
        "outbox": {"ok": True, "pending": counts.get("pending", 0), "dead": counts.get("dead", 0)},
    }


cli = typer.Typer(help="Warden: Sentinel incidents and compliance evidence in Microsoft Teams.")
outbox_cli = typer.Typer(help="Inspect and retry outbound deliveries.")
db_cli = typer.Typer(help="Database maintenance.")
demo_cli = typer.Typer(help="Send realistic sample data to a running Warden.")
cli.add_typer(outbox_cli, name="outbox")
cli.add_typer(db_cli, name="db")
cli.add_typer(demo_cli, name="demo")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


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
    _configure_logging()
    if playground and settings.mode is not Mode.SANDBOX:
        console.print("[red]--playground needs WARDEN_MODE=sandbox[/]")
        raise typer.Exit(2)
    console.print(
        f"Warden ({settings.mode.value}) on http://{settings.host}:{settings.port} "
        f"· store {settings.effective_database_url.split('://')[0]}"
    )
    app = create_app(settings, playground=playground)
    web.run_app(app, host=settings.host, port=settings.port, print=None)


@cli.command("settings")
def settings_doc() -> None:
    """Print the configuration table (every variable, its default and meaning) as Markdown."""
    typer.echo(settings_table(), nl=False)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations."""

    async def run() -> None:
        store = Store.from_url(_settings().effective_database_url)
        try:
            await store.upgrade()
            facts = await store.check()
        finally:
            await store.close()
        console.print(f"database at revision {facts.get('revision')}")

    asyncio.run(run())


@outbox_cli.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, running, done or dead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List the newest outbox jobs."""

    async def run() -> list[outbox.JobRow]:
        store = Store.from_url(_settings().effective_database_url)
        try:
            return await outbox.list_jobs(store, status, limit)
        finally:
            await store.close()

    rows = asyncio.run(run())
    table = Table("id", "kind", "status", "attempts", "next attempt", "last error")
    for row in rows:
        table.add_row(
            str(row.id),
            row.kind,
            row.status,
            str(row.attempts),
            row.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.last_error or "",
        )
    console.print(table if rows else "no jobs")


@outbox_cli.command("retry")
def outbox_retry(job_id: int) -> None:
    """Make a dead or waiting job due again now, with fresh attempts."""

    async def run() -> bool:
        store = Store.from_url(_settings().effective_database_url)
        try:
            return await outbox.retry(store, job_id)
        finally:
            await store.close()

    if not asyncio.run(run()):
        console.print(f"[red]no dead or pending job {job_id}[/]")
        raise typer.Exit(1)
    console.print(f"job {job_id} will be retried now")


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
