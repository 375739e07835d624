"""The sandboxes ``make run`` starts beside the Playground (Sentinel, SharePoint, ServiceNow), and
the demo's use of them.

With no Sentinel configured, ``python app.py serve --playground`` serves the ARM sandbox (ARM,
its Entra ID token endpoint and Graph ``checkMemberGroups``, over TLS with a CA kept under
``var/arm-sandbox``) on ``WARDEN_SANDBOX_ARM_PORT`` and connects Warden to it, so the triage
buttons work end to end: ``python app.py demo incident`` creates the incident in the sandbox
Sentinel (its control API) before sending the webhook, and a click changes it there.

With no ServiceNow configured either, the ServiceNow sandbox is served on
``WARDEN_SANDBOX_SERVICENOW_PORT`` (its records page at ``/``) and Warden connected to it, its
business rule calling Warden's ``/api/webhooks/servicenow``: incidents can be linked to its
change requests from the cards, and a change made on its page reaches the card.

With no SharePoint site configured either, the Graph sandbox (SharePoint sites, lists, drives,
and the same ``checkMemberGroups`` as the ARM sandbox) is served beside it with the ARM
sandbox's identity and certificate, its state kept under ``var/graph-sandbox``, and Warden
files evidence and mirrors the audit log there; its read-only page is ``/_sandbox/sharepoint``.
The Playground's people are members of the catalog's reviewer groups in the sandbox directory,
so whoever clicks in the Playground may request and review evidence (not their own). The
same Graph sandbox serves Defender XDR's security incidents (Warden's identity holds their
roles), and the ARM sandbox's Resource Graph is seeded with ``SEEDED_RESOURCES`` resources and
their ARM deployments. ``attached`` points a command run beside ``make run`` (``cmdb sync``,
``costs ingest``) at these sandboxes and at its Azurite.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from core.settings import Settings
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.arm_tls import make_tls_files
from sandbox.arm_tokens import DEFAULT_GRAPH_ROLES
from sandbox.azurite import connection_string as azurite_connection
from sandbox.azurite import installed as azurite_installed
from sandbox.connector_records import SANDBOX_TENANT_ID
from sandbox.graph import DEFAULT_HOST, GraphSandbox, run_graph_sandbox
from sandbox.playground import default_config
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

CLIENT_ID = "5f0d1f6e-8f7a-4c4e-9a6b-2d9c1b7e3a10"
"""The app id Warden uses against the sandbox Sentinel (any GUID will do)."""


def tls_dir(settings: Settings) -> Path:
    """Where the sandbox Sentinel's CA and server certificate are kept."""
    return settings.var_dir / "arm-sandbox"


def sandbox_url(settings: Settings) -> str:
    """The sandbox Sentinel's base URL."""
    return f"https://127.0.0.1:{settings.sandbox_arm_port}"


GRAPH_ROLES = (
    *DEFAULT_GRAPH_ROLES,
    "Sites.Manage.All",
    "SecurityIncident.ReadWrite.All",
    "SecurityAlert.Read.All",
)
"""Warden's Graph application roles in the sandbox: memberships, managers, SharePoint
(``Sites.Manage.All`` lets it provision the site's library and lists) and Defender XDR's
incidents and alerts."""

SEEDED_RESOURCES = 60
"""Resources in the sandbox Resource Graph (``cmdb sync`` reads them; ARM deployments too)."""

SHAREPOINT_SITE = f"{DEFAULT_HOST}:/sites/Compliance"
"""The sandbox SharePoint site of the evidence records (``WARDEN_SHAREPOINT_SITE``)."""


def embedded_sentinel(
    settings: Settings, *, reviewer_groups: Iterable[str] = ()
) -> tuple[Settings, ArmSandbox]:
    """A sandbox Sentinel (not yet serving) and ``settings`` connected to it.

    Its directory knows the Playground's people, so an assignment names them, each a member
    of ``reviewer_groups`` (the catalog's), so a reviewer check through Graph lets them
    review. A new CA is made at each start (the demo command reads it from ``var/arm-sandbox``).
    """
    secret = SecretStr(f"sbx~{CLIENT_ID}")
    arm = ArmSandbox(client_id=CLIENT_ID, client_secret=secret.get_secret_value())
    arm.register_client(CLIENT_ID, secret.get_secret_value(), graph_roles=GRAPH_ROLES)
    arm.tls = make_tls_files(tls_dir(settings))
    config = default_config()
    groups = sorted({group.lower() for group in reviewer_groups})
    for person in [config["currentUser"], *config["users"]]:
        arm.add_user(
            str(person["name"]),
            str(person["userPrincipleName"]),
            object_id=str(person["aadObjectId"]),
            mail=str(person["email"]),
            groups=groups,
        )
    arm.resource_graph.seed(SEEDED_RESOURCES)
    arm.seed_deployments()
    return connected_to_sentinel(settings, arm.tenant_id), arm


def connected_to_sentinel(settings: Settings, tenant_id: str) -> Settings:
    """``settings`` connected to the sandbox Sentinel served on ``WARDEN_SANDBOX_ARM_PORT``."""
    url = sandbox_url(settings)
    return settings.model_copy(
        update={
            "arm_endpoint": url,
            "arm_ca_bundle": tls_dir(settings) / "ca.pem",
            "graph_endpoint": f"{url}/v1.0",
            "azure_tenant_id": tenant_id,
            "azure_client_id": CLIENT_ID,
            "azure_client_secret": SecretStr(f"sbx~{CLIENT_ID}"),
            "azure_authority_host": url,
        }
    )


def graph_port(settings: Settings) -> int:
    """The sandbox Graph's port (``WARDEN_SANDBOX_GRAPH_PORT``)."""
    return settings.sandbox_graph_port


def sharepoint_page_url(settings: Settings) -> str:
    """The sandbox SharePoint's read-only page (sites, the evidence library, the lists)."""
    return f"https://127.0.0.1:{graph_port(settings)}/_sandbox/sharepoint"


def embedded_sharepoint(settings: Settings, arm: ArmSandbox) -> tuple[Settings, GraphSandbox]:
    """A sandbox Graph for SharePoint (not yet serving) trusting ``arm``'s tokens, and
    ``settings`` filing evidence in its Compliance site (all Graph calls go to it)."""
    graph = GraphSandbox(arm, settings.var_dir / "graph-sandbox")
    connected = settings.model_copy(
        update={
            "graph_endpoint": f"https://127.0.0.1:{graph_port(settings)}/v1.0",
            "sharepoint_site": SHAREPOINT_SITE,
        }
    )
    return connected, graph


@contextlib.asynccontextmanager
async def serving_sharepoint(
    graph: GraphSandbox, settings: Settings
) -> AsyncIterator[GraphSandbox]:
    """Serve ``graph`` on its port with the site of ``WARDEN_SHAREPOINT_SITE`` in it (kept if
    it is there already); its library and lists are the caller's to provision."""
    hostname, _, path = str(settings.sharepoint_site or SHAREPOINT_SITE).partition(":")
    graph.add_site(hostname, path)
    async with run_graph_sandbox(graph.arm, port=graph_port(settings), sandbox=graph) as up:
        yield up


SERVICENOW_USER = "warden.integration"
"""The API account Warden uses against the sandbox ServiceNow."""


def embedded_servicenow(settings: Settings) -> tuple[Settings, ServiceNowSandbox]:
    """A sandbox ServiceNow (not yet serving) and ``settings`` connected to it: basic auth,
    a webhook secret for its business rule, a short poll."""
    password = secrets.token_urlsafe(18)
    hook = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    snow = ServiceNowSandbox(username=SERVICENOW_USER, password=password)
    connected = settings.model_copy(
        update={
            "servicenow": settings.servicenow.model_copy(
                update={
                    "instance_url": f"http://127.0.0.1:{settings.sandbox_servicenow_port}",
                    "username": SERVICENOW_USER,
                    "password": SecretStr(password),
                    "webhook_secrets": [SecretStr(hook)],
                    "poll_seconds": 30.0,
                }
            )
        }
    )
    return connected, snow


@contextlib.asynccontextmanager
async def serving_servicenow(
    snow: ServiceNowSandbox, settings: Settings
) -> AsyncIterator[ServiceNowSandbox]:
    """Serve ``snow`` on its port, its business rule calling Warden's webhook."""
    secret = settings.servicenow.webhook_secrets[0].get_secret_value()
    snow.set_business_rule(f"http://127.0.0.1:{settings.port}/api/webhooks/servicenow", secret)
    async with run_servicenow_sandbox(port=settings.sandbox_servicenow_port, sandbox=snow) as up:
        yield up


@contextlib.asynccontextmanager
async def serving(arm: ArmSandbox, port: int) -> AsyncIterator[ArmSandbox]:
    """Serve ``arm`` on ``port`` (with the certificate made by ``embedded_sentinel``)."""
    async with run_arm_sandbox(port=port, sandbox=arm) as running:
        yield running


def attached(settings: Settings) -> Settings:
    """``settings`` for a command run beside ``make run``: connected to its sandbox Sentinel
    (ARM, Resource Graph, deployments) when no Sentinel is configured and its CA is under
    ``var/arm-sandbox``, and to its Azurite when no cost exports are configured; each only
    while it listens (otherwise the command says what is not configured)."""
    ca = tls_dir(settings) / "ca.pem"
    if not settings.sentinel_connected and ca.exists() and _listens(settings.sandbox_arm_port):
        settings = connected_to_sentinel(settings, SANDBOX_TENANT_ID)
    port = settings.sandbox_azurite_port
    if not settings.costs.enabled and port and azurite_installed() and _listens(port):
        costs = settings.costs.model_copy(
            update={"connection_string": SecretStr(azurite_connection(port))}
        )
        settings = settings.model_copy(update={"costs": costs})
    return settings


def _listens(port: int) -> bool:
    """True when something accepts connections on this machine's ``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _control(settings: Settings, base: str | None = None) -> httpx.Client | None:
    """A client of a running sandbox's control API (the sandbox Sentinel's unless ``base``,
    another sandbox sharing its CA, is given); ``None`` when none is running."""
    ca = tls_dir(settings) / "ca.pem"
    if not ca.exists():
        return None
    client = httpx.Client(base_url=f"{base or sandbox_url(settings)}/_sandbox", verify=str(ca))
    try:
        client.get("/faults", timeout=2.0)
    except httpx.HTTPError:
        client.close()
        return None
    return client


def _call(
    settings: Settings, method: str, path: str, body: dict[str, Any], base: str | None = None
) -> dict[str, Any] | None:
    """``method path`` on a running sandbox's control API, its JSON answer; ``None`` when no
    sandbox is running."""
    client = _control(settings, base)
    if client is None:
        return None
    try:
        answer = client.request(method, path, json=body, timeout=10.0)
        answer.raise_for_status()
        made: dict[str, Any] = answer.json()
        return made
    finally:
        client.close()


def create_incident(settings: Settings, properties: dict[str, Any]) -> dict[str, Any] | None:
    """Create an incident in the running sandbox Sentinel; ``None`` when none is running."""
    return _call(settings, "POST", "/incidents", {"properties": properties})


def change_incident(
    settings: Settings, name: str, properties: dict[str, Any]
) -> dict[str, Any] | None:
    """Change an incident as the portal would; ``None`` when no sandbox is running."""
    return _call(settings, "PATCH", f"/incidents/{name}", {"properties": properties})


def deploy_before(
    settings: Settings, name: str, deployment: str, minutes: float
) -> dict[str, Any] | None:
    """In the running sandbox Sentinel, make incident ``name`` name a resource of the sandbox
    Resource Graph, deployed (``deployment``) ``minutes`` before its first alert; the
    deployment, or ``None`` when no sandbox is running."""
    body = {"name": deployment, "minutesBefore": minutes}
    return _call(settings, "POST", f"/incidents/{name}/deployments", body)


def raise_defender_incident(
    settings: Settings, properties: dict[str, Any]
) -> dict[str, Any] | None:
    """Raise an incident in the running sandbox Defender XDR (the sandbox Graph); ``None``
    when none is running."""
    base = f"https://127.0.0.1:{graph_port(settings)}"
    return _call(settings, "POST", "/security/incidents", properties, base)
