"""The doctor's probes of Jira Service Management and Defender XDR, through Warden's clients.

Like the others (``cli.doctor_probes``), each makes one read its connector is allowed to do
and says ✓ only when that read succeeded: JSM one issue of the project Warden links (the
enhanced JQL search), Defender XDR one incident through Graph security. A connector that is
off or not configured makes no call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.core.exceptions import AzureError

from cli.doctor_probes import brief, host_of, inactive, token_fix
from connectors.jsm.mapping import jql_string
from connectors.jsm.setup import connect as jsm_connect
from connectors.sentinel.connection import tls_verify
from connectors.sentinel.setup import credential
from core.breaker import Breakers
from core.doctor import Check, failed, passed, skipped
from core.errors import DeliveryError, WardenError
from core.settings import Settings
from graph.client import graph_client, graph_http
from graph.security import DefenderClient

JSM = "Jira Service Management"
DEFENDER = "Microsoft Defender XDR"
JSM_AUTH_FIX = (
    "check WARDEN_JSM__EMAIL and WARDEN_JSM__API_TOKEN, or the OAuth client "
    "(WARDEN_JSM__CLIENT_ID/CLIENT_SECRET)"
)
DEFENDER_GRANT = (
    "grant Warden's identity SecurityIncident.ReadWrite.All (application) in Microsoft Graph"
)


async def jsm(settings: Settings) -> list[Check]:
    """A one-issue read of the project Warden links, then the admin webhook's secrets."""
    off = inactive(settings, "jsm")
    if off is not None:
        return off
    config = settings.jsm
    connection = jsm_connect(config, Breakers())
    if connection is None:  # the registry says configured: a site is set
        return [skipped(JSM, "not configured")]
    host = host_of(str(config.base_url))
    jql = f"project = {jql_string(config.project)} ORDER BY updated DESC"
    try:
        _ = [record async for record in connection.client.search_jql(jql, limit=1)]
    except WardenError as exc:
        read = failed(JSM, brief(str(exc)), _jsm_fix(exc, host, config.project))
    else:
        auth = "OAuth client credentials" if config.uses_oauth else f"API token of {config.email}"
        read = passed(JSM, f"project {config.project} readable on {host} ({auth})")
    finally:
        await connection.aclose()
    count = len(config.webhook_secrets)
    if not count:
        why = f"no secrets: changes arrive by polling ({config.poll_seconds:g} s)"
        return [read, skipped("JSM webhook", why)]
    return [read, passed("JSM webhook", f"{count} secret(s) in WARDEN_JSM__WEBHOOK_SECRETS")]


def _jsm_fix(exc: WardenError, host: str, project: str) -> str:
    """What fixes a failed JSM read."""
    status = exc.status if isinstance(exc, DeliveryError) else 0
    if status == 401:
        return JSM_AUTH_FIX
    if status in (400, 403, 404):
        return f"give Warden's account Browse projects on {project}, or fix WARDEN_JSM__PROJECT"
    if status is None or status >= 500:
        return f"Jira does not answer ({host}): check WARDEN_JSM__BASE_URL and the network"
    return "see the detail"


async def defender(settings: Settings) -> list[Check]:
    """A one-incident read of Defender XDR's incidents through Microsoft Graph security."""
    off = inactive(settings, "defender")
    if off is not None:
        return off
    token = credential(settings)
    http = graph_http(Breakers(), tls_verify(settings))
    try:
        client = DefenderClient(
            graph_client(token, http, base_url=settings.graph_endpoint), page_size=1
        )
        since = datetime.now(UTC) - timedelta(hours=settings.defender.first_lookback_hours)
        async for _first in client.list_incidents(updated_since=since):
            break  # one incident (or none) proves the read; no further page is asked for
    except AzureError as exc:
        return [failed(DEFENDER, f"no Graph token: {brief(exc.message)}", token_fix(exc))]
    except DeliveryError as exc:
        return [failed(DEFENDER, brief(str(exc)), _defender_fix(exc, settings))]
    finally:
        await http.aclose()
        await token.close()
    host = host_of(settings.graph_endpoint)
    return [passed(DEFENDER, f"security incidents readable through Graph ({host}, $top=1)")]


def _defender_fix(exc: DeliveryError, settings: Settings) -> str:
    """What fixes a failed read of Defender XDR's incidents."""
    if exc.status in (401, 403):
        return DEFENDER_GRANT
    if exc.status is None or exc.status >= 500:
        return (
            f"Graph does not answer ({host_of(settings.graph_endpoint)}): check "
            "WARDEN_GRAPH_ENDPOINT and the network"
        )
    return "see the detail"
