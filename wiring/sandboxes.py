"""The embedded sandboxes of ``make run`` (``--playground``): served while Warden runs.

Sandbox Sentinel (ARM, Entra ID, Graph, Resource Graph, deployments), ServiceNow and
SharePoint (with Defender XDR's incidents in the same Graph sandbox) start beside Warden when
nothing real is configured, so every journey can be tried on one machine; Azurite (cost
exports) starts in the background when it is installed; the Agents Playground is started
last and pointed at Warden. The sandboxes (and the Graph and Azure SDKs provisioning uses)
are imported by the function that starts them: a Warden started without ``--playground``
never loads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import SecretStr

from cli.common import console
from connectors.registry import enabled
from core.breaker import Breakers
from core.catalog import Catalog
from core.settings import Mode, Settings

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox
    from sandbox.graph import GraphSandbox
    from sandbox.jsm import JsmSandbox
    from sandbox.servicenow import ServiceNowSandbox

log = logging.getLogger(__name__)

PLAYGROUND_URL = web.AppKey("playground_url", str)
"""Where the Playground's page is served (set once it listens)."""

AZURITE_READY = web.AppKey("azurite_ready", asyncio.Event)
"""Set once the embedded Azurite serves the sample export (it starts in the background)."""

DEFENDER_POLL_SECONDS = 10.0
"""How often ``make run`` polls the sandbox Defender XDR (unless configured)."""


def attached(settings: Settings) -> Settings:
    """``settings`` for a command run beside ``make run`` (sandbox mode): connected to its
    sandbox Sentinel and Azurite for what is not configured; unchanged otherwise."""
    if settings.mode is not Mode.SANDBOX:
        return settings
    from sandbox.embedded import attached as attach

    return attach(settings)


SANDBOX_BUDGET_TOKEN = "sandbox-budget-alerts-token-0001"  # noqa: S105 - sandbox mode only
"""The budget webhook's token in ``make run`` (sandbox mode only; ``demo budget`` sends it)."""

PLAYGROUND_GENERAL = "team-id"
"""The Playground's General channel (its team's id): ``make run``'s operators' channel."""


def _with_budgets(settings: Settings) -> Settings:
    """``settings`` with the budget webhook on (the sandbox token; unmapped alerts to the
    Playground's General channel) unless budget alerts are configured."""
    if settings.budgets.webhook_tokens:
        return settings
    budgets = settings.budgets.model_copy(
        update={
            "webhook_tokens": [SecretStr(SANDBOX_BUDGET_TOKEN)],
            "operators_channel": settings.budgets.operators_channel or PLAYGROUND_GENERAL,
        }
    )
    return settings.model_copy(update={"budgets": budgets})


def budget_token(settings: Settings) -> str | None:
    """The token a command run beside Warden sends with a budget alert: the first one
    configured, else ``make run``'s in sandbox mode; ``None`` when there is none."""
    if settings.budgets.webhook_tokens:
        return settings.budgets.webhook_tokens[0].get_secret_value()
    return SANDBOX_BUDGET_TOKEN if settings.mode is Mode.SANDBOX else None


def _with_defender(settings: Settings) -> Settings:
    """``settings`` with Defender XDR on (polling the Graph sandbox) unless configured."""
    chosen = settings.defender.model_fields_set
    if "enabled" in chosen:
        return settings
    update: dict[str, object] = {"enabled": True}
    if "poll_seconds" not in chosen:
        update["poll_seconds"] = DEFENDER_POLL_SECONDS
    return settings.model_copy(update={"defender": settings.defender.model_copy(update=update)})


def embedded(
    settings: Settings, catalog: Catalog | None
) -> tuple[Settings, ArmSandbox | None, GraphSandbox | None, ServiceNowSandbox | None]:
    """The sandboxes (not yet serving) for what is not configured, and ``settings`` pointed
    at them: Sentinel (triage, reviews), SharePoint (evidence filed, audited) and ServiceNow
    (so links work in the Playground)."""
    from sandbox.embedded import embedded_sentinel, embedded_servicenow, embedded_sharepoint

    arm, sharepoint, snow = None, None, None
    if not settings.sentinel_connected and enabled(settings, "sentinel"):
        groups = [group.id for requirement in catalog or () for group in requirement.reviewers]
        settings, arm = embedded_sentinel(settings, reviewer_groups=groups)
        if not settings.sharepoint_site and enabled(settings, "sharepoint"):
            settings, sharepoint = embedded_sharepoint(settings, arm)
            settings = _with_defender(settings)  # the Graph sandbox serves its incidents
    if _itsm_wanted(settings, "servicenow"):
        settings, snow = embedded_servicenow(settings)
    return _with_budgets(settings), arm, sharepoint, snow


def _itsm_wanted(settings: Settings, name: Literal["servicenow", "jsm"]) -> bool:
    """True when ``make run`` should connect the ``name`` sandbox: no ITSM system is
    configured, ``WARDEN_SANDBOX_ITSM`` names it, and its connector is not switched off."""
    configured = settings.servicenow.enabled or settings.jsm.enabled
    return not configured and settings.sandbox_itsm == name and enabled(settings, name)


def embedded_jsm(settings: Settings) -> tuple[Settings, JsmSandbox | None]:
    """With ``WARDEN_SANDBOX_ITSM=jsm`` and no ITSM system configured, a sandbox Jira Service
    Management (not yet serving) and ``settings`` connected to it, in ServiceNow's place."""
    if not _itsm_wanted(settings, "jsm"):
        return settings, None
    from sandbox.embedded_jsm import embedded_jsm as make

    return make(settings)


async def sandbox_jsm(jsm: JsmSandbox, settings: Settings) -> AsyncIterator[None]:
    """Serve the sandbox Jira Service Management for the Playground while Warden runs."""
    from sandbox.embedded_jsm import serving_jsm

    async with serving_jsm(jsm, settings) as running:
        console.print(f"Sandbox Jira Service Management (project SEC): {running.url}")
        yield


def embedded_costs(settings: Settings) -> tuple[Settings, bool]:
    """``settings`` reading cost exports from the embedded Azurite, and whether to start it:
    only when no storage is configured, its port is not 0 and ``npm ci`` installed it."""
    if settings.costs.enabled or not settings.sandbox_azurite_port:
        return settings, False
    from sandbox.azurite import connection_string, installed

    if not installed():
        return settings, False
    costs = settings.costs.model_copy(
        update={"connection_string": SecretStr(connection_string(settings.sandbox_azurite_port))}
    )
    return settings.model_copy(update={"costs": costs}), True


async def sandbox_azurite(
    ready: asyncio.Event, settings: Settings, resource_ids: Sequence[str]
) -> AsyncIterator[None]:
    """Start Azurite in the background (Warden does not wait for it), write the sample export
    of ``resource_ids``' costs (then set ``ready``), and stop it when Warden stops."""
    task = asyncio.create_task(_serve_azurite(settings, resource_ids, ready))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _serve_azurite(
    settings: Settings, resource_ids: Sequence[str], ready: asyncio.Event
) -> None:
    from azure.core.exceptions import AzureError

    from sandbox.azurite import serving_azurite, write_sample_export

    port = settings.sandbox_azurite_port
    try:
        async with serving_azurite(port, settings.var_dir / "azurite") as connection:
            try:
                await asyncio.to_thread(
                    write_sample_export, connection, settings.costs.container, resource_ids
                )
            except AzureError as exc:  # Azurite answered badly: Warden goes on without it
                log.warning("the sandbox Azurite refused the sample cost export: %s", exc)
                return
            ready.set()
            console.print(
                f"Sandbox blob storage (Azurite, a sample cost export): http://127.0.0.1:{port}"
            )
            await asyncio.Event().wait()  # serve until Warden stops (the task is cancelled)
    except (RuntimeError, OSError) as exc:
        log.warning("the sandbox Azurite did not start: %s", exc)


def sample_resources(arm: ArmSandbox | None) -> list[str]:
    """The resources the sample cost export bills: the sandbox Resource Graph's."""
    return sorted(str(row["id"]) for row in arm.resource_graph.rows.values()) if arm else []


async def sandbox_servicenow(snow: ServiceNowSandbox, settings: Settings) -> AsyncIterator[None]:
    """Serve the sandbox ServiceNow for the Playground while Warden runs."""
    from sandbox.embedded import serving_servicenow

    async with serving_servicenow(snow, settings) as running:
        console.print(f"Sandbox ServiceNow (Table API, records page): {running.url}")
        yield


async def sandbox_sharepoint(
    graph: GraphSandbox, settings: Settings, breakers: Breakers
) -> AsyncIterator[None]:
    """Serve the sandbox SharePoint while Warden runs, its site provisioned (idempotent) before
    the worker starts, so evidence is filed and the audit log mirrored there at once."""
    from connectors.sentinel.connection import tls_verify
    from connectors.sentinel.setup import credential as sentinel_credential
    from graph.provision import provision
    from sandbox.embedded import serving_sharepoint, sharepoint_page_url

    async with serving_sharepoint(graph, settings):
        credential = sentinel_credential(settings)
        try:
            await provision(settings, credential, breakers=breakers, verify=tls_verify(settings))
        finally:
            await credential.close()
        console.print(
            f"Sandbox SharePoint (evidence library, lists): {sharepoint_page_url(settings)}"
        )
        yield


async def sandbox_sentinel(arm: ArmSandbox, port: int) -> AsyncIterator[None]:
    """Serve the sandbox Sentinel for the Playground while Warden runs."""
    from sandbox.embedded import serving

    async with serving(arm, port):
        console.print(f"Sandbox Sentinel (ARM, Entra ID, Graph): https://127.0.0.1:{port}")
        yield


async def playground(app: web.Application, settings: Settings) -> AsyncIterator[None]:
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
