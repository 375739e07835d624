"""Composition of the evidence side: the chat desk, reminders, SharePoint filing and mirror.

Called by ``app.create_app``; each function builds one part from settings and returns it with
what to close after the outbox worker has stopped. The Graph modules (msgraph-sdk's large
generated tree under them) are imported by the function that wires them, after it has found
Graph configured: a Warden without SharePoint or an Azure identity never loads them.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from bot.evidence import EvidenceDesk
from bot.evidence_reminders import LEADER_NAME as REMINDER_LEADER
from bot.evidence_reminders import EvidenceReminders
from bot.reviewers import ReviewerGroups
from bot.roles import RoleGate
from connectors.registry import is_on
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.setup import credential as sentinel_credential
from connectors.ssrf import SsrfPolicy
from connectors.ssrf import stream as ssrf_stream
from connectors.ssrf_rules import link_hosts
from core.breaker import Breakers
from core.catalog import Catalog
from core.errors import WardenError
from core.leader import leading
from core.settings import Mode, Settings
from core.store.evidence import EVIDENCE_FILE_JOB, EVIDENCE_LIST_JOB
from core.store.store import Store
from core.worker import Handler
from graph.unconfigured import wait_for_sharepoint
from wiring.lifecycle import Closers

if TYPE_CHECKING:
    from graph.evidence_files import GuardedFetch
    from graph.managers import Managers


def evidence_desk(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    sentinel: SentinelConnection | None,
    catalog: Catalog | None,
    *,
    itsm: bool = False,
    attest: bool = False,
    personal: bool = True,
    roles: RoleGate | None = None,
) -> EvidenceDesk | None:
    """Evidence requests from chat, when there is a catalog; reviewers checked in Graph when
    Warden has an Azure credential (without one, as in the sandbox, anyone may review).
    ``itsm``: ServiceNow is connected, so rejections and approvals are written there;
    ``attest``: Azure Policy is, so approved policy requests are attested there;
    ``personal``: with Graph, owners typed as UPNs are resolved and owner cards go to
    personal chats (``graph.people``); ``roles``: who holds the reviewer role."""
    if catalog is None:
        return None
    if sentinel is None:
        return EvidenceDesk(store, catalog, roles=roles, itsm=itsm, attest=attest)
    from graph.client import graph_client, graph_http
    from graph.people import People
    from graph.responders import ResponderGroups

    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    ttl = settings.responder_cache_seconds
    reviewers = ReviewerGroups(
        lambda groups: ResponderGroups(graph, groups, ttl=ttl), close=http.aclose
    )
    desk = EvidenceDesk(store, catalog, reviewers=reviewers, roles=roles, itsm=itsm, attest=attest)
    if personal:
        desk.people = People(graph, bind_base=settings.graph_endpoint)
    return desk


def managers(
    settings: Settings, breakers: Breakers, sentinel: SentinelConnection | None
) -> tuple[Managers | None, Closers]:
    """Managers in Graph for escalations when Warden has an Azure credential, and what to
    close after the worker; without one overdue evidence goes to the catalog's target."""
    if sentinel is None:
        return None, []
    from graph.client import graph_client, graph_http
    from graph.managers import Managers

    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    return Managers(graph), [http.aclose]


async def reminding(
    store: Store, reminders: EvidenceReminders, settings: Settings
) -> AsyncIterator[None]:
    """Send evidence reminders and escalations, on one replica at a time."""

    async def round_() -> None:
        try:
            await reminders.run_once()
        except WardenError as exc:  # the store failed: the next round tries again
            logging.getLogger(__name__).warning("evidence reminder round failed: %s", exc)

    every = settings.evidence_reminder_seconds
    async with leading(store, REMINDER_LEADER, round_, every=every):
        yield


def audit_mirror(settings: Settings, store: Store, breakers: Breakers) -> tuple[Handler, Closers]:
    """The ``audit.mirror`` handler and what to close after the worker: the Audit Log list
    when SharePoint is configured; else the jobs wait (pending) until it is."""
    if not is_on(settings, "sharepoint"):
        return wait_for_sharepoint, []
    from graph.audit_mirror import AuditMirror
    from graph.client import graph_client, graph_http
    from graph.sharepoint import SitePath

    http = graph_http(breakers, tls_verify(settings))
    credential = sentinel_credential(settings)
    graph = graph_client(credential, http, base_url=settings.graph_endpoint)
    mirror = AuditMirror(store, graph, SitePath.parse(str(settings.sharepoint_site)))
    return mirror, [http.aclose, credential.close]


def evidence_sync(
    settings: Settings,
    store: Store,
    breakers: Breakers,
    closers: Closers,
) -> dict[str, Handler]:
    """The ``evidence.file`` and ``evidence.list`` handlers (SharePoint configured), else
    handlers that keep the jobs waiting; what they open is added to ``closers``."""
    if not is_on(settings, "sharepoint"):
        return {EVIDENCE_FILE_JOB: wait_for_sharepoint, EVIDENCE_LIST_JOB: wait_for_sharepoint}
    from graph.audit_verify import download_fetch
    from graph.client import graph_client, graph_http
    from graph.evidence_chat_files import chat_file_fetch
    from graph.evidence_sync import EvidenceFiling, EvidenceListSync
    from graph.sharepoint import SitePath

    site = SitePath.parse(str(settings.sharepoint_site))
    http = graph_http(breakers, tls_verify(settings))
    credential = sentinel_credential(settings)
    graph = graph_client(credential, http, base_url=settings.graph_endpoint)
    filing = EvidenceFiling(
        store,
        graph,
        site,
        http,
        link_fetch=evidence_link_fetch(settings),
        download_fetch=download_fetch(site, settings.graph_endpoint, tls_verify(settings)),
        file_fetch=chat_file_fetch(
            settings.evidence_file_hosts, settings.graph_endpoint, tls_verify(settings)
        ),
    )
    closers += [http.aclose, credential.close]
    return {EVIDENCE_FILE_JOB: filing, EVIDENCE_LIST_JOB: EvidenceListSync(store, graph, site)}


def evidence_link_fetch(settings: Settings) -> GuardedFetch:
    """The fetch of evidence links: ``WARDEN_EVIDENCE_LINK_HOSTS``; in sandbox mode with Graph on
    this machine (the embedded sandbox) links on this machine too, its CA trusted as well."""
    from graph.audit_verify import DOWNLOAD_TIMEOUT, LOCAL_HOSTS
    from graph.evidence_files import UploadLimits
    from graph.evidence_sync import link_fetch

    local = settings.mode is Mode.SANDBOX and httpx.URL(settings.graph_endpoint).host in LOCAL_HOSTS
    if not local:
        return link_fetch(settings.evidence_link_hosts)
    context = ssl.create_default_context()
    if settings.arm_ca_bundle is not None:
        context.load_verify_locations(cafile=str(settings.arm_ca_bundle))
    policy = SsrfPolicy(
        allowed_hosts=link_hosts(settings.evidence_link_hosts),
        allow_private=True,
        allowed_ports=None,
        max_bytes=UploadLimits().max_bytes,
        timeout=DOWNLOAD_TIMEOUT,
    )
    return functools.partial(ssrf_stream, policy=policy, ssl_context=context)
