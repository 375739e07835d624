"""The doctor's probes of the outside world: Sentinel, Azure Policy, ServiceNow, SharePoint and
the Teams package, each through the same client Warden itself uses (JSM's and Defender XDR's
are in ``cli.doctor_sources``; ``cli.doctor`` lists them all).

Each probe makes one read its connector is allowed to do and says ✓ only when that read
succeeded; a refusal names the role or variable that fixes it. A connector that is off or
not configured makes no call: its row is skipped with the reason (``connectors.registry``).
"""

from __future__ import annotations

import httpx
from azure.core.exceptions import AzureError, ClientAuthenticationError

from connectors.arm_errors import ArmServiceError
from connectors.arm_token import ARM_SCOPE
from connectors.policy.client import PolicyInsightsClient
from connectors.registry import BY_NAME, Name, state
from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.setup import credential, workspaces
from connectors.servicenow.setup import connect
from core.breaker import Breakers
from core.doctor import (
    Check,
    failed,
    passed,
    sentinel_webhook_rows,
    skipped,
    webhook_secret_rows,
)
from core.errors import DeliveryError, WardenError
from core.models import IncidentStatus
from core.settings import Mode, Settings
from graph.audit_verify import SharePointAccess, sharepoint_access
from graph.provision import SCHEMA
from graph.sharepoint import ListRef, columns_of, lists_of, site_by_path

PROBE_CHANGE = "CHG0000000"
"""A change number no instance gives out: reading it proves access without reading data."""

CREDENTIAL_FIX = (
    "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the managed identity)"
)
SNOW_AUTH_FIX = (
    "check WARDEN_SERVICENOW__USERNAME/PASSWORD or the OAuth client "
    "(WARDEN_SERVICENOW__CLIENT_ID/CLIENT_SECRET)"
)


def inactive(settings: Settings, name: Name) -> list[Check] | None:
    """The skipped row of a connector that is off or not configured; None when it is on."""
    connector, now = BY_NAME[name], state(settings, name)
    if now == "on":
        return None
    if now == "off":
        return [skipped(connector.title, f"off ({connector.flag}=false)")]
    return [skipped(connector.title, f"not configured (set {connector.setup})")]


def brief(text: str) -> str:
    """The first line of an error's text (Entra ID's go on with trace ids)."""
    return text.strip().splitlines()[0] if text.strip() else text


def host_of(url: str) -> str:
    """Only the host (and port) of ``url``: never a path, query or credentials."""
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host


def _arm_fix(exc: ArmServiceError, settings: Settings, grant: str, missing: str) -> str:
    """What fixes a failed ARM read: credentials, a role (``grant``), a name, or the network."""
    if exc.code == "CredentialRefused":
        return CREDENTIAL_FIX
    if exc.status in (401, 403):
        return grant
    if exc.status == 404:
        return missing
    if exc.status is None or exc.status >= 500 or exc.code == "CredentialUnavailable":
        return (
            f"ARM or Entra ID does not answer ({host_of(settings.arm_endpoint)}): check "
            "WARDEN_ARM_ENDPOINT, AZURE_AUTHORITY_HOST and the network"
        )
    return "see the detail"


def token_fix(exc: AzureError) -> str:
    """What fixes a credential that gave no token: its secret, or reaching Entra ID."""
    if isinstance(exc, ClientAuthenticationError):
        return CREDENTIAL_FIX
    return "Entra ID does not answer: check AZURE_AUTHORITY_HOST and the network"


# Microsoft Sentinel.


async def sentinel(settings: Settings) -> list[Check]:
    """The webhook's secrets, and a one-incident read of each workspace Warden polls."""
    off = inactive(settings, "sentinel")
    if off is not None:
        return off
    rows = sentinel_webhook_rows(settings) if settings.webhook_secrets else []
    if not settings.sentinel_connected:
        return rows or sentinel_webhook_rows(settings)
    connection = SentinelConnection.from_settings(settings, Breakers())
    try:
        if not settings.sentinel_workspaces:
            return [*rows, await _arm_token(connection, settings)]
        for workspace in workspaces(settings):
            rows.append(await _read_workspace(connection.client, workspace, settings))
        return rows
    finally:
        await connection.aclose()


async def _arm_token(connection: SentinelConnection, settings: Settings) -> Check:
    """Without a workspace to read, the ARM token is all that can be proven."""
    name = "Sentinel identity"
    try:
        await connection.credential.get_token(ARM_SCOPE)
    except AzureError as exc:
        return failed(name, f"no ARM token: {brief(exc.message)}", token_fix(exc))
    detail = (
        f"ARM token for {settings.azure_client_id or 'the managed identity'}; no workspace "
        "to read (WARDEN_SENTINEL_WORKSPACES is unset)"
    )
    return passed(name, detail)


async def _read_workspace(
    client: SentinelClient, workspace: Workspace, settings: Settings
) -> Check:
    """Read one incident of ``workspace`` (Incidents_List, ``$top=1``)."""
    name = f"Sentinel {workspace.workspace_name}"
    try:
        await client.incident_page(workspace, statuses=list(IncidentStatus), top=1)
    except ArmServiceError as exc:
        grant = (
            "grant Warden's identity Microsoft Sentinel Reader (polling) or Microsoft Sentinel "
            f"Responder (triage) on {workspace.workspace_name}"
        )
        missing = (
            f"no workspace {workspace}: check WARDEN_SENTINEL_WORKSPACES "
            "(subscription/resourceGroup/workspace)"
        )
        return failed(name, brief(str(exc)), _arm_fix(exc, settings, grant, missing))
    return passed(name, f"incidents readable in {workspace}")


# Azure Policy.


async def policy(settings: Settings) -> list[Check]:
    """A one-record read of Azure Policy's non-compliance on each configured scope."""
    off = inactive(settings, "policy")
    if off is not None:
        return off
    arm = SentinelConnection.from_settings(settings, Breakers())
    client = PolicyInsightsClient(arm.http, arm.credential, base_url=settings.arm_endpoint)
    try:
        return [await _read_scope(client, scope, settings) for scope in settings.policy_scopes]
    finally:
        await arm.aclose()


async def _read_scope(client: PolicyInsightsClient, scope: str, settings: Settings) -> Check:
    """Read at most one latest non-compliant policy state of ``scope`` (queryResults)."""
    name = f"Azure Policy {scope}"
    try:
        _ = [state async for state in client.non_compliant(scope, top=1)]
    except ArmServiceError as exc:
        grant = f"grant Warden's identity Reader on {scope} (it reads policy states)"
        missing = f"no scope {scope}: check WARDEN_POLICY_SCOPES"
        return failed(name, brief(str(exc)), _arm_fix(exc, settings, grant, missing))
    return passed(name, "policy states readable (queryResults, $top=1)")


# ServiceNow.


async def servicenow(settings: Settings) -> list[Check]:
    """A read of one change request, then the business-rule webhook's secrets."""
    off = inactive(settings, "servicenow")
    if off is not None:
        return off
    config = settings.servicenow
    connection = connect(config, Breakers())
    if connection is None:  # the registry says configured: an instance is set
        return [skipped("ServiceNow", "not configured")]
    host = host_of(str(config.instance_url))
    try:
        await connection.client.get(PROBE_CHANGE)
    except WardenError as exc:
        read = failed("ServiceNow", brief(str(exc)), _servicenow_fix(exc, host))
    else:
        auth = (
            "OAuth client credentials" if config.uses_oauth else f"basic auth as {config.username}"
        )
        read = passed("ServiceNow", f"change_request readable on {host} ({auth})")
    finally:
        await connection.aclose()
    secrets = [s.get_secret_value() for s in config.webhook_secrets]
    if not secrets:
        why = f"no secrets: changes arrive by polling ({config.poll_seconds:g} s)"
        return [read, skipped("ServiceNow webhook", why)]
    variable = "WARDEN_SERVICENOW__WEBHOOK_SECRETS"
    return [read, *webhook_secret_rows("ServiceNow webhook", variable, secrets)]


def _servicenow_fix(exc: WardenError, host: str) -> str:
    """What fixes a failed ServiceNow read."""
    status = exc.status if isinstance(exc, DeliveryError) else 0
    if status == 401:
        return SNOW_AUTH_FIX
    if status == 403:
        return "give the integration user read access to change_request (e.g. the itil role)"
    if status is None or status >= 500:
        return f"ServiceNow does not answer ({host}): check WARDEN_SERVICENOW__INSTANCE_URL"
    return "see the detail"


# SharePoint.


async def sharepoint(settings: Settings) -> list[Check]:
    """The evidence site, its library and lists and their columns, read through Graph."""
    off = inactive(settings, "sharepoint")
    if off is not None:
        return off
    token = credential(settings)
    try:
        async with sharepoint_access(settings, token, verify=tls_verify(settings)) as access:
            return [await _read_site(access, settings)]
    except AzureError as exc:
        return [failed("SharePoint", f"no Graph token: {brief(exc.message)}", token_fix(exc))]
    finally:
        await token.close()


async def _read_site(access: SharePointAccess, settings: Settings) -> Check:
    """One row: the site is there and provisioned, or what is missing and the fix."""
    name = "SharePoint"
    try:
        site = await site_by_path(access.graph, access.site)
        missing = await _missing_lists(access, site.id or "")
    except DeliveryError as exc:
        return failed(name, brief(str(exc)), _graph_fix(exc, settings))
    if missing:
        detail = f"site {access.site}: missing " + ", ".join(missing)
        return failed(name, detail, "run `python app.py provision`")
    lists = ", ".join(spec.display_name for spec in SCHEMA)
    return passed(name, f"site {access.site}: {lists} provisioned")


async def _missing_lists(access: SharePointAccess, site_id: str) -> list[str]:
    """The lists, and columns of present lists, that provisioning would add (read only)."""
    present = {
        (found.display_name or "").casefold(): found
        for found in await lists_of(access.graph, site_id)
    }
    missing: list[str] = []
    for spec in SCHEMA:
        found = present.get(spec.display_name.casefold())
        if found is None:
            missing.append(spec.display_name)
            continue
        columns = await columns_of(access.graph, ListRef(site_id, found.id or ""))
        names = {(c.name or "").casefold() for c in columns}
        names |= {(c.display_name or "").casefold() for c in columns}
        missing += [
            f"{spec.display_name}/{column.name}"
            for column in spec.columns
            if column.name.casefold() not in names
        ]
    return missing


def _graph_fix(exc: DeliveryError, settings: Settings) -> str:
    """What fixes a failed Graph read of the site."""
    if exc.status == 404:
        return "no such site: check WARDEN_SHAREPOINT_SITE (host:/sites/Name)"
    if exc.status in (401, 403):
        return (
            "grant Warden's identity Sites.Selected (write on this site) or "
            "Sites.ReadWrite.All in Microsoft Graph"
        )
    if exc.status is None or exc.status >= 500:
        return (
            f"Graph does not answer ({host_of(settings.graph_endpoint)}): check "
            "WARDEN_GRAPH_ENDPOINT and the network"
        )
    return "see the detail"


# The Teams package.


async def teams_manifest(settings: Settings) -> list[Check]:
    """The Teams app package ``manifest build`` would make: valid, or each problem."""
    from manifest.build import problems  # the package builder's own validation

    name = "Teams manifest"
    if not settings.microsoft_app_id and settings.mode is Mode.SANDBOX:
        return [skipped(name, "no app id: the package is built for a tenant")]
    found = problems(settings)
    if found:
        fix = "set what each problem names, then `python app.py manifest build`"
        return [failed(name, "; ".join(found), fix)]
    return [passed(name, f"package valid for app {settings.microsoft_app_id}")]
