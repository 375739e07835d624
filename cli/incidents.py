"""Incident commands: reconcile Sentinel now, send a demo incident."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cli.common import console, on_store, settings_or_exit
from core.errors import WardenError
from core.signing import sign

if TYPE_CHECKING:
    from connectors.sentinel.reconcile import ReconcileRun
    from core.settings import Settings

T = TypeVar("T")

sentinel_cli = typer.Typer(help="Microsoft Sentinel: reconcile its incidents now.")
demo_cli = typer.Typer(help="Send realistic sample data to a running Warden.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(sentinel_cli, name="sentinel")
    cli.add_typer(demo_cli, name="demo")


@sentinel_cli.command("reconcile")
def sentinel_reconcile(
    restart: Annotated[
        bool, typer.Option("--restart", help="Start a new run instead of resuming a stopped one.")
    ] = False,
) -> None:
    """Walk every open Sentinel incident now through ingest (a stopped run resumes)."""
    from connectors.sentinel.setup import reconcile_now  # the Azure SDK: for this command

    settings = settings_or_exit()
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
            run = on_store(
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


@demo_cli.command("incident")
def demo_incident(
    severity: Annotated[str, typer.Option(help="Informational, Low, Medium or High")] = "High",
    title: Annotated[str | None, typer.Option(help="The incident's title.")] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Send a newer version of the last demo incident.")
    ] = False,
    xdr: Annotated[
        bool,
        typer.Option(
            "--xdr",
            help="Raise it in the sandbox Defender XDR too (Sentinel reports it with the XDR "
            "id: one card) on a resource deployed 12 minutes before its first alert.",
        ),
    ] = False,
    url: Annotated[str | None, typer.Option(help="Warden's base URL.")] = None,
) -> None:
    """Sign and post a realistic Sentinel incident to a running Warden."""
    from sandbox.embedded import change_incident as sandbox_change  # the sandbox Sentinel
    from sandbox.embedded import create_incident as sandbox_create
    from sandbox.sentinel_samples import sample_incident, updated_incident

    settings = settings_or_exit()
    if xdr and update:
        console.print("[red]--xdr raises a new incident: leave out --update[/]")
        raise typer.Exit(2)
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
        if xdr:
            wanted.update(_in_defender(settings, str(props["title"])))
        resource = sandbox_create(settings, wanted) or resource  # in the sandbox Sentinel too
        if xdr:
            _deployed(settings, resource)
    body = json.dumps(resource).encode()
    headers = {"content-type": "application/json", **sign(settings.webhook_secrets[0], body)}
    base = url or f"http://{settings.host}:{settings.port}"
    _accepted(base, "/api/webhooks/sentinel", content=body, headers=headers)
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(json.dumps(resource), encoding="utf-8")
    props = resource["properties"]
    console.print(
        f"sent incident #{props['incidentNumber']} ({props['severity']}, {props['status']}): "
        f"{props['title']}"
    )


def _in_defender(settings: Settings, title: str) -> dict[str, str]:
    """Raise ``title`` in the sandbox Defender XDR; the properties that make Sentinel's
    incident its twin (Defender XDR's connector sets them so)."""
    from sandbox.embedded import raise_defender_incident

    made = raise_defender_incident(settings, {"displayName": title, "status": "active"})
    if made is None:
        console.print("[red]--xdr needs `make run`'s sandbox Defender XDR (the sandbox Graph)[/]")
        raise typer.Exit(1)
    return {"providerName": "Microsoft XDR", "providerIncidentId": str(made["id"])}


def _deployed(settings: Settings, resource: dict[str, Any]) -> None:
    """Deploy a resource the incident names 12 minutes before its first alert."""
    from sandbox.embedded import deploy_before

    name = f"release-{resource['properties']['incidentNumber']:04d}"
    made = deploy_before(settings, str(resource["name"]), name, 12)
    if made is None:
        console.print("[red]--xdr needs `make run`'s sandbox Sentinel[/]")
        raise typer.Exit(1)
    targets = [r["id"].rsplit("/", 1)[-1] for r in made["properties"].get("outputResources", [])]
    console.print(f"deployed {name} to {', '.join(targets)} 12 minutes before the first alert")


@demo_cli.command("budget")
def demo_budget(
    scope: Annotated[
        str,
        typer.Option(
            help="Subscription id, or /subscriptions/<id>/resourceGroups/<group>; default: "
            "the sandbox subscription whose costs `costs ingest` loads."
        ),
    ] = "7f0e4a2c-6b1d-4c3e-9a8f-2d5b6c7e8f90",
    spent: Annotated[float, typer.Option(help="Spent so far this month.")] = 1050.25,
    budget: Annotated[float, typer.Option(help="The month's budget.")] = 1000.0,
    threshold: Annotated[float, typer.Option(help="The threshold met.")] = 800.0,
    url: Annotated[str | None, typer.Option(help="Warden's base URL.")] = None,
) -> None:
    """Send a realistic Azure budget alert (budget alert schema) to a running Warden."""
    from core.budgets import scope_key
    from sandbox.budget_samples import budget_alert
    from wiring.sandboxes import budget_token

    settings = settings_or_exit()
    token = budget_token(settings)
    if token is None:
        console.print("[red]budget alerts are off: set WARDEN_BUDGETS__WEBHOOK_TOKENS[/]")
        raise typer.Exit(1)
    try:
        subscription, _, group = scope_key(scope).partition("/")
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    body = budget_alert(
        subscription, resource_group=group, spent=spent, budget=budget, threshold=threshold
    )
    base = url or f"http://{settings.host}:{settings.port}"
    _accepted(base, "/api/webhooks/budgets", params={"token": token}, json=body)
    console.print(f"sent budget alert: {spent:g} of {budget:g} spent (threshold {threshold:g})")


def _accepted(base: str, path: str, **request: Any) -> None:
    """POST to a running Warden's webhook; exit 1 saying why unless it answers 202."""
    try:
        answer = httpx.post(f"{base}{path}", **request)
    except httpx.HTTPError as exc:
        console.print(f"[red]Warden is not reachable at {base}: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    if answer.status_code != 202:
        console.print(f"[red]{answer.status_code}: {escape(answer.text)}[/]")
        raise typer.Exit(1)
