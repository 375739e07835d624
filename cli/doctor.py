"""``python app.py doctor``: check configuration, store, connectors, secrets and manifest."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console
from core.doctor import Check, Probe, check_bot_identity, check_store, run_doctor, summary
from core.settings import load_settings


def probes() -> tuple[Probe, ...]:
    """Every check after the configuration's, in the order the table shows them (each
    connector's client is imported here, for this command only: ADR 9)."""
    from cli import doctor_probes as connectors
    from cli.doctor_sources import defender, jsm

    return (
        Probe("Store", check_store),
        Probe("Bot identity", check_bot_identity),
        Probe("Microsoft Sentinel", connectors.sentinel),
        Probe("Microsoft Defender XDR", defender),
        Probe("Azure Policy", connectors.policy),
        Probe("ServiceNow", connectors.servicenow),
        Probe("Jira Service Management", jsm),
        Probe("SharePoint", connectors.sharepoint),
        Probe("Teams manifest", connectors.teams_manifest),
    )


MARKS = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]–[/]"}


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.command("doctor")(doctor)


def doctor() -> None:
    """Check the configuration, the store, each connector, webhook secrets and the Teams
    package, with real calls; print what to fix. Exit 1 when any check fails."""
    checks = asyncio.run(run_doctor(load_settings, probes()))
    console.print(checks_table(checks))
    console.print(summary(checks))
    if any(check.ok is False for check in checks):
        raise typer.Exit(1)


def checks_table(checks: Sequence[Check]) -> Table:
    """The rows as a table: check, result (✓ ✗ –), detail, fix."""
    table = Table("Check", "Result", title="Warden doctor")
    table.add_column("Detail", overflow="fold", ratio=3)
    table.add_column("Fix", overflow="fold", ratio=2)
    for check in checks:
        table.add_row(escape(check.name), MARKS[check.ok], escape(check.detail), escape(check.fix))
    return table
