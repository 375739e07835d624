"""Cost commands: ingest the Cost Management exports now, list quarantined partitions, top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console, on_store, settings_or_exit
from core.costs import ResourceCost
from core.errors import WardenError
from core.store import cost_queries
from core.store.cost_queries import Quarantined
from core.store.store import Store

if TYPE_CHECKING:  # the ingest's code (azure-storage-blob) is imported when it runs (ADR 9)
    from connectors.costexports.ingest import IngestProgress

costs_cli = typer.Typer(help="Cost Management exports: cost per resource per day.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(costs_cli, name="costs")


def _quarantine_table(items: list[Quarantined]) -> Table:
    table = Table("partition", "reason", "when (UTC)", title="Quarantined partitions")
    for item in items:
        table.add_row(escape(item.name), escape(item.reason), item.at.strftime("%Y-%m-%d %H:%M"))
    return table


@costs_cli.command("ingest")
def costs_ingest(
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep the partitions a stopped run already stored.")
    ] = False,
) -> None:
    """Ingest every export's newest run now; list the partitions quarantined."""
    from wiring.sandboxes import attached  # make run's sandboxes, when running

    settings = attached(settings_or_exit())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task, told = progress.add_task("listing exports", total=None), False

        def show(state: IngestProgress) -> None:
            nonlocal told
            if state.resumed and not told:
                console.print(f"resuming: {state.resumed} partition(s) already stored")
                told = True
            progress.update(
                task,
                total=state.partitions,
                completed=state.done,
                description=f"{state.rows:,} rows · {state.quarantined} quarantined",
            )

        async def work(store: Store) -> tuple[IngestProgress, list[Quarantined]]:
            from wiring.costs import ingest_now

            state = await ingest_now(settings, store, resume=resume, progress=show)
            return state, await cost_queries.quarantined(store)

        try:
            state, quarantined = on_store(work)
        except WardenError as exc:
            console.print(
                f"[red]cost ingest stopped: {escape(str(exc))}[/] (run it with --resume to go on)"
            )
            raise typer.Exit(1) from None
    _report(state, quarantined)


def _report(state: IngestProgress, quarantined: list[Quarantined]) -> None:
    console.print(
        f"cost ingest finished: {state.manifests} export run(s), {state.ingested} partition(s) "
        f"ingested ({state.rows:,} rows), {state.kept} unchanged, "
        f"{state.quarantined} quarantined now"
    )
    for name in state.bad_manifests:
        console.print(f"[yellow]unreadable manifest skipped: {escape(name)}[/]")
    if quarantined:
        console.print(_quarantine_table(quarantined))


@costs_cli.command("top")
def costs_top(
    subscription: Annotated[str, typer.Argument(help="Subscription id.")],
    resource_group: Annotated[
        str | None, typer.Option("--resource-group", "-g", help="Only this resource group.")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days back from today (UTC).")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Resources shown.")] = 10,
) -> None:
    """The costliest resources of a subscription (or resource group) over the last days."""
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)

    async def work(store: Store) -> list[ResourceCost]:
        return await cost_queries.top_resources(
            store, subscription, start, end, resource_group=resource_group, limit=limit
        )

    found = on_store(work)
    table = Table("resource", "resource group", "cost", title=f"Top resources {start} – {end}")
    for item in found:
        table.add_row(escape(item.resource_id), escape(item.resource_group), item.shown())
    console.print(table if found else "no cost recorded for that scope and period")
