"""Evidence commands: SharePoint provisioning, the audit trail, the catalog, campaigns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table

from bot.evidence import card_job, quarter
from cli.common import console, on_store, settings_or_exit
from core import campaigns as campaign_rules
from core.catalog import Catalog, load_catalog
from core.errors import DeliveryError, SettingsError, WardenError
from core.settings import (
    Settings,
)
from core.store import campaigns as campaign_store
from core.store.admin_audit import operator
from core.store.evidence_cards import CardRole
from core.store.store import Store

if TYPE_CHECKING:
    from graph.audit_export import ExportSummary
    from graph.audit_verify import SharePointAccess, VerifyReport
    from graph.provision import ProvisionReport

T = TypeVar("T")

audit_cli = typer.Typer(help="The evidence audit trail in SharePoint: verify it, export it.")
catalog_cli = typer.Typer(help="The requirement catalog: check it, see what Warden reads.")
campaign_cli = typer.Typer(help="Evidence campaigns: a request for every requirement of a period.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(audit_cli, name="audit")
    cli.add_typer(catalog_cli, name="catalog")
    cli.add_typer(campaign_cli, name="campaign")
    cli.command("provision")(provision_sharepoint)


def provision_sharepoint() -> None:
    """Create or update, idempotently, the SharePoint library and lists evidence is filed in."""
    from connectors.sentinel.connection import tls_verify  # Graph and Azure: for this command
    from connectors.sentinel.setup import credential as sentinel_credential
    from graph.provision import print_report, provision

    settings = settings_or_exit()

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
    from connectors.sentinel.connection import tls_verify  # Graph and Azure: for this command
    from connectors.sentinel.setup import credential as sentinel_credential
    from graph.audit_verify import sharepoint_access

    settings = settings_or_exit()

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
        return on_store(run) if with_store else asyncio.run(run(None))
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
    from graph.audit_verify import print_verify_report, verify_configured

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
    from graph.audit_export import export, print_export_summary

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


@catalog_cli.command("check")
def catalog_check(
    file: Annotated[
        Path | None, typer.Argument(help="The catalog; default WARDEN_REQUIREMENTS_FILE.")
    ] = None,
) -> None:
    """Validate a requirement catalog: its requirements as a table, or each error's line."""
    if file is None:
        file = settings_or_exit().requirements_file  # a bad configured catalog stops here (exit 2)
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
    settings, today = settings_or_exit(), datetime.now(UTC).date()
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

        report = on_store(run)
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
        rows = on_store(lambda store: campaign_store.overview(store, today))
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
    found = on_store(lambda store: campaign_store.progress(store, name))
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
