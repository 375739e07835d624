"""Operating commands: the database, the outbox and its dead letters, keys, the admin log."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

import typer
from rich.progress import Progress
from rich.table import Table

from cli.common import console, on_store
from core.crypto import generate_key
from core.store import admin_audit, dlq, outbox
from core.store.admin_audit import operator
from core.store.rekey import rotate, sealed_counts
from core.store.store import Store

T = TypeVar("T")

db_cli = typer.Typer(help="Database maintenance.")
outbox_cli = typer.Typer(help="Inspect and retry outbound deliveries.")
dlq_cli = typer.Typer(help="The dead-letter queue: see, replay and purge failed work.")
keys_cli = typer.Typer(help="Encryption keys of stored data: generate one, rotate to the first.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(db_cli, name="db")
    cli.add_typer(outbox_cli, name="outbox")
    cli.add_typer(dlq_cli, name="dlq")
    cli.add_typer(keys_cli, name="keys")
    cli.command("admin-log")(admin_log)


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

    console.print(f"database at revision {on_store(upgrade).get('revision')}")


@outbox_cli.command("list")
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help="pending, running, done, dead or quarantined")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List the newest outbox jobs."""
    rows = on_store(lambda store: outbox.list_jobs(store, status, limit))
    console.print(_jobs_table(rows) if rows else "no jobs")


@outbox_cli.command("retry")
def outbox_retry(job_id: int) -> None:
    """Make a dead, quarantined or waiting job due again now, with fresh attempts."""
    if not on_store(lambda store: dlq.retry(store, job_id, actor=operator())):
        console.print(f"[red]no dead or pending job {job_id}[/]")
        raise typer.Exit(1)
    console.print(f"job {job_id} will be retried now")


@dlq_cli.command("list")
def dlq_list(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100) -> None:
    """The dead-letter queue: dead (attempts spent) and quarantined (not retryable) jobs."""
    rows = on_store(lambda store: outbox.list_jobs(store, outbox.DLQ, limit))
    console.print(_jobs_table(rows) if rows else "the dead-letter queue is empty")


@dlq_cli.command("show")
def dlq_show(job_id: int) -> None:
    """One job in full: its payload, attempts and the reason it stopped."""
    row = on_store(lambda store: outbox.get_job(store, job_id))
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
        count = on_store(lambda store: dlq.replay_all(store, actor=operator()))
        console.print(f"{count} job(s) replayed")
    elif on_store(lambda store: dlq.replay(store, job_id, actor=operator())):
        console.print(f"job {job_id} replayed")
    else:
        console.print(f"job {job_id} is not in the dead-letter queue; nothing to replay")


@dlq_cli.command("purge")
def dlq_purge(job_id: int) -> None:
    """Delete one DLQ job for good."""
    if not on_store(lambda store: dlq.purge(store, job_id, actor=operator())):
        console.print(f"[red]job {job_id} is not in the dead-letter queue[/]")
        raise typer.Exit(1)
    console.print(f"job {job_id} purged")


def admin_log(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """Who subscribed, unsubscribed, replayed, retried or purged what, and when."""
    rows = on_store(lambda store: admin_audit.entries(store, limit))
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

    rewritten = on_store(run)
    done = ", ".join(f"{kind} {count}" for kind, count in rewritten.items())
    console.print(f"re-encrypted under the first key: {done}")
