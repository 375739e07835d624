"""The embedded sandboxes of ``make run`` (``--playground``): served while Warden runs.

Sandbox Sentinel (ARM, Entra ID, Graph), ServiceNow and SharePoint start beside Warden when
nothing real is configured, so every journey can be tried on one machine; the Agents
Playground is started last and pointed at Warden. The sandboxes (and the Graph and Azure
SDKs provisioning uses) are imported by the function that starts them: a Warden started
without ``--playground`` never loads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from cli.common import console
from connectors.registry import enabled
from core.breaker import Breakers
from core.catalog import Catalog
from core.settings import Settings

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox
    from sandbox.graph import GraphSandbox
    from sandbox.servicenow import ServiceNowSandbox

PLAYGROUND_URL = web.AppKey("playground_url", str)
"""Where the Playground's page is served (set once it listens)."""


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
    if not settings.servicenow.enabled and enabled(settings, "servicenow"):
        settings, snow = embedded_servicenow(settings)
    return settings, arm, sharepoint, snow


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
