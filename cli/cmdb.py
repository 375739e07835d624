"""CMDB commands: sync Azure resources (Resource Graph) into CMDB CIs now; the last run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console, on_store, settings_or_exit
from core.costs import ResourceCost
from core.errors import WardenError
from core.store import cmdb_cis, cost_queries
from core.store import deployments as deployments_store
from core.store.cmdb_cis import StoredCi
from core.store.store import Store

if TYPE_CHECKING:  # the sync's code is imported when the command runs (ADR 9)
    from connectors.resourcegraph.cmdb_sync import CmdbRun

cmdb_cli = typer.Typer(help="The CMDB: Azure resources from Resource Graph as configuration items.")

Costs = dict[str, ResourceCost]
SHOWN_UNTAGGED = 25
"""CIs needing tags listed after a sync at most (the count says how many in all)."""


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(cmdb_cli, name="cmdb")


def untagged_table(items: list[StoredCi], costs: dict[str, ResourceCost]) -> Table:
    """The CIs needing tags, with what each cost over the last 30 days (when known)."""
    table = Table(
        "resource", "type", "owner", "environment", "cost (30 days)", title="CIs needing tags"
    )
    for stored in items:
        item = stored.item
        cost = costs.get(item.ci_id.lower())
        table.add_row(
            escape(item.ci_id),
            item.type,
            escape(item.owner or "—"),
            escape(item.env or "—"),
            cost.shown() if cost is not None else "—",
        )
    return table


async def last_30_days(store: Store, items: list[StoredCi]) -> dict[str, ResourceCost]:
    """What each CI cost over the last 30 days (UTC), from the ingested cost exports."""
    end = datetime.now(UTC).date()
    ids = [stored.item.ci_id for stored in items]
    return await cost_queries.resource_costs(store, ids, end - timedelta(days=29), end)


@cmdb_cli.command("sync")
def cmdb_sync(
    resume: Annotated[
        bool, typer.Option("--resume", help="Resume a stopped run from its checkpoint.")
    ] = False,
) -> None:
    """Sync every Azure resource into the CMDB now; list the CIs that need owner/env tags."""
    from wiring.sandboxes import attached  # make run's sandboxes, when running

    settings = attached(settings_or_exit())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task, first = progress.add_task("syncing", total=None), True

        def show(run: CmdbRun) -> None:
            nonlocal first
            if first and run.pages:
                console.print(f"resuming CMDB sync {run.run} after {run.pages} page(s)")
            first = False
            progress.update(
                task,
                total=run.total,
                completed=run.read,
                description=f"run {run.run} · page {run.pages}",
            )

        async def work(store: Store) -> tuple[CmdbRun, dict[str, int], list[StoredCi], Costs]:
            from wiring.cmdb import sync_now

            run = await sync_now(settings, store, resume=resume, progress=show)
            untagged = await cmdb_cis.cis(
                store, needing_tags=True, retired=False, limit=SHOWN_UNTAGGED
            )
            costs = await last_30_days(store, untagged)
            return run, await cmdb_cis.counts(store), untagged, costs

        try:
            run, counts, untagged, costs = on_store(work)
        except WardenError as exc:
            console.print(
                f"[red]CMDB sync stopped: {escape(str(exc))}[/] (run it with --resume to go on)"
            )
            raise typer.Exit(1) from None
    _report(run, counts, untagged, costs)


def _report(run: CmdbRun, counts: dict[str, int], untagged: list[StoredCi], costs: Costs) -> None:
    """The summary of a finished run and the CIs that need tags."""
    console.print(
        f"CMDB sync {run.run} finished: {run.read} resource(s) in {run.pages} page(s), "
        f"{run.retired} retired now; the CMDB holds {counts['active']} active and "
        f"{counts['retired']} retired CI(s)"
    )
    if run.skipped:
        console.print(f"[yellow]{run.skipped} row(s) were not resources and were skipped[/]")
    if run.owners_unresolved:
        console.print(
            f"[yellow]{run.owners_unresolved} owner(s) matched no ServiceNow user (by e-mail "
            "or user name): their CIs have no owned_by[/]"
        )
    needing = counts["needing_tags"]
    if not needing:
        console.print("every active CI has its owner and environment tags")
        return
    console.print(f"[yellow]{needing} CI(s) need tags (owner or environment missing)[/]")
    console.print(untagged_table(untagged, costs))
    if needing > len(untagged):
        console.print(f"… and {needing - len(untagged)} more")


@cmdb_cli.command("deployments")
def cmdb_deployments(
    resource: Annotated[str, typer.Argument(help="A CI's resource id, or its name.")],
) -> None:
    """The newest ARM deployments Warden read that touched a CI, and the changes linked."""

    async def work(store: Store) -> tuple[list[StoredCi], dict[str, list[Any]], list[Any]]:
        wanted = resource.strip().lower()
        found = await cmdb_cis.cis(store, ids=[wanted]) if wanted.startswith("/") else []
        if not found:
            found = [c for c in await cmdb_cis.cis(store) if c.item.name.lower() == wanted][:5]
        ids = [c.item.ci_id for c in found] or ([wanted] if wanted.startswith("/") else [])
        deployed = await deployments_store.of_resources(store, ids)
        seen = [d for items in deployed.values() for d in items]
        return found, deployed, await deployments_store.links_of(store, seen)

    found, deployed, links = on_store(work)
    if not any(deployed.values()):
        console.print(f"no deployment Warden has read touched {escape(resource)}")
        raise typer.Exit(1 if not found else 0)
    for ci_id, items in deployed.items():
        table = Table("deployment", "state", "ended (UTC)", "changes", title=escape(ci_id))
        for item in items:
            changes = [
                f"{x.change} by {x.linked_by}"
                for x in links
                if x.deployment_id == item.deployment_id
            ]
            table.add_row(
                escape(item.name),
                item.state,
                f"{item.timestamp:%Y-%m-%d %H:%M}",
                escape(", ".join(changes) or "—"),
            )
        console.print(table)


@cmdb_cli.command("status")
def cmdb_status() -> None:
    """The newest sync run (finished, unfinished or failed) and the CMDB's CI counts."""
    facts = on_store(cmdb_cis.summary)
    if facts["run"] is None:
        console.print("the CMDB has never been synced")
        return
    when = facts["finished_at"] or facts["started_at"]
    console.print(
        f"CMDB sync {facts['run']}: {facts['state']} ({when}), {facts['read']} resource(s) read; "
        f"{facts['active']} active, {facts['retired']} retired, "
        f"{facts['needing_tags']} needing tags"
    )
    if facts["owners_unresolved"]:
        console.print(
            f"[yellow]{facts['owners_unresolved']} owner(s) matched no ServiceNow user: "
            "their CIs have no owned_by[/]"
        )
    if facts["error"]:
        console.print(f"[red]stopped: {escape(str(facts['error']))}[/]")
