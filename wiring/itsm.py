"""ITSM wiring: ServiceNow and Jira Service Management, each, both or neither.

Each configured (and switched-on) system connects, runs its poller and its signed webhook.
The ``ItsmDirectory`` maps a system to its connector and a reference to its system, for the
link desk, the budget desk, unfurling and search. The ITSM outbox jobs go to the system
their payload names (``ItsmJobsBySystem``): a link's outcome to the system of the linked
record, a create to the system chosen when it was asked for (the default one,
``WARDEN_ITSM__DEFAULT``). A job of a system not running waits in the outbox, saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.links import NOT_CONNECTED, LinkDesk
from bot.triage import TriageDesk
from bot.unfurl import Unfurler
from connectors.jsm import setup as jsm_setup
from connectors.jsm.sync import JsmConnection
from connectors.registry import BY_NAME, HELD_WAIT, Name, enabled, held, off_messages
from connectors.sentinel.connection import SentinelConnection
from connectors.servicenow import setup as servicenow_setup
from connectors.servicenow.cmdb import CmdbLookup
from connectors.servicenow.sync import ServiceNowConnection
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.itsm import ItsmConnector, ItsmSystem
from core.itsm_directory import ItsmDirectory
from core.metrics import Metrics
from core.settings import Settings
from core.signing import WebhookVerifier
from core.store.cmdb import CMDB_JOB
from core.store.links import ITSM_CREATE_JOB, ITSM_OUTCOME_JOB
from core.store.outbox import Job
from core.store.store import Store
from core.worker import Handler
from web.jsm_webhook import JsmWebhook
from web.servicenow_webhook import ServiceNowWebhook

ROUTED_JOBS = (ITSM_OUTCOME_JOB, ITSM_CREATE_JOB)
"""The job kinds both systems deliver: each goes to the system its payload names."""

_NAMES: dict[ItsmSystem, Name] = {ItsmSystem.SERVICENOW: "servicenow", ItsmSystem.JSM: "jsm"}


@dataclass
class ItsmParts:
    """The connected systems' connections and the directory over them."""

    servicenow: ServiceNowConnection | None
    jsm: JsmConnection | None
    directory: ItsmDirectory


def connect(settings: Settings, breakers: Breakers) -> ItsmParts:
    """Connect every configured, switched-on ITSM system (no I/O until the first call)."""
    servicenow = (
        servicenow_setup.connect(settings.servicenow, breakers)
        if enabled(settings, "servicenow")
        else None
    )
    jsm = jsm_setup.connect(settings.jsm, breakers) if enabled(settings, "jsm") else None
    connectors: dict[ItsmSystem, ItsmConnector] = {}
    if servicenow is not None:
        connectors[ItsmSystem.SERVICENOW] = servicenow.client
    if jsm is not None:
        connectors[ItsmSystem.JSM] = jsm.client
    directory = ItsmDirectory(connectors, default=settings.itsm.default, setup=_setup(settings))
    return ItsmParts(servicenow, jsm, directory)


def _setup(settings: Settings) -> dict[ItsmSystem, str]:
    """Per system, what an administrator does to connect it (or to switch it on)."""
    off = off_messages(settings)
    return {
        system: off[name]
        if not enabled(settings, name)
        else f"an administrator sets {BY_NAME[name].setup}."
        for system, name in _NAMES.items()
    }


def link_desk(
    settings: Settings, store: Store, triage: TriageDesk | None, parts: ItsmParts
) -> LinkDesk | None:
    """The link desk (links need triage: only responders link)."""
    if triage is None:
        return None
    switched_off = off_messages(settings)
    return LinkDesk(
        store,
        triage,
        parts.directory,
        not_connected=switched_off.get("servicenow", NOT_CONNECTED),
    )


def unfurler(settings: Settings, parts: ItsmParts) -> Unfurler | None:
    """What unfurls pasted record URLs of the connected systems; None when none is."""
    if parts.servicenow is None and parts.jsm is None:
        return None
    snow = parts.servicenow
    return Unfurler(
        str(settings.servicenow.instance_url) if snow is not None else None,
        snow.client if snow is not None else None,
        jira=(settings.jsm.browse_url, parts.jsm.client) if parts.jsm is not None else None,
    )


def handlers(
    settings: Settings, store: Store, parts: ItsmParts, incidents: SentinelConnection | None
) -> dict[str, Handler]:
    """The outbox handlers of the connected systems; the shared job kinds routed by system."""
    found: dict[str, Handler] = {}
    by_system: dict[ItsmSystem, Mapping[str, Handler]] = {}
    if parts.jsm is not None:
        by_system[ItsmSystem.JSM] = jsm_setup.handlers(parts.jsm, store)
    if parts.servicenow is not None:
        by_system[ItsmSystem.SERVICENOW] = own = servicenow_setup.handlers(parts.servicenow, store)
        found.update({k: v for k, v in own.items() if k not in ROUTED_JOBS})
        if incidents is not None:
            found[CMDB_JOB] = CmdbLookup(incidents.client, parts.servicenow.client, store)
    if not by_system:
        return found  # the registry holds the ITSM jobs while no system runs
    waiting = {
        system: held(name) if not enabled(settings, name) else _unconfigured(name)
        for system, name in _NAMES.items()
    }
    default = parts.directory.default_system or ItsmSystem.SERVICENOW
    for kind in ROUTED_JOBS:
        delivering = {system: own[kind] for system, own in by_system.items() if kind in own}
        found[kind] = ItsmJobsBySystem(delivering, waiting, default)
    return found


class ItsmJobsBySystem:
    """An ITSM job kind's handler: the job goes to the handler of the system it names (a job
    naming none, queued before systems were named, to ``default``)."""

    def __init__(
        self,
        handlers: Mapping[ItsmSystem, Handler],
        waiting: Mapping[ItsmSystem, Handler],
        default: ItsmSystem,
    ) -> None:
        """``waiting``: per system not running, what keeps its jobs in the outbox."""
        self._handlers, self._waiting, self._default = dict(handlers), dict(waiting), default

    async def __call__(self, job: Job) -> None:
        """Deliver ``job`` through its system's handler."""
        named = job.payload.get("system")
        try:
            system = ItsmSystem(str(named)) if named else self._default
        except ValueError:
            raise DeliveryError(f"unknown ITSM system {named!r}", outcome=Outcome.FAIL) from None
        handler = self._handlers.get(system) or self._waiting[system]
        await handler(job)


def _unconfigured(name: Name) -> Handler:
    """A handler keeping the jobs of a system that is not configured waiting, unspent."""
    connector = BY_NAME[name]

    async def wait(job: Job) -> None:
        raise DeliveryError(
            f"{connector.title} is not configured (set {connector.setup}): the {job.kind} "
            "job waits until it is",
            outcome=Outcome.RETRY,
            retry_after=HELD_WAIT,
            attempted=False,
        )

    return wait


def polling(
    app: web.Application,
    settings: Settings,
    store: Store,
    parts: ItsmParts,
    *,
    wake: Callable[[], None],
    metrics: Metrics,
) -> None:
    """Poll each connected system while Warden runs (each closes its connection at the end)."""
    snow, jira = parts.servicenow, parts.jsm
    if snow is not None:
        app.cleanup_ctx.append(
            lambda _app: servicenow_setup.polling(
                snow, store, settings.servicenow, on_change=wake, metrics=metrics
            )
        )
    if jira is not None:
        app.cleanup_ctx.append(
            lambda _app: jsm_setup.polling(
                jira, store, settings.jsm, on_change=wake, metrics=metrics
            )
        )


def routes(
    app: web.Application,
    settings: Settings,
    store: Store,
    parts: ItsmParts,
    *,
    wake: Callable[[], None],
) -> None:
    """Serve each connected system's signed webhook, when it has secrets."""
    if parts.servicenow is not None and settings.servicenow.webhook_secrets:
        secrets = [s.get_secret_value() for s in settings.servicenow.webhook_secrets]
        snow_webhook = ServiceNowWebhook(
            WebhookVerifier(secrets),
            store,
            servicenow_setup.webhook_parser(settings.servicenow),
            max_bytes=settings.webhook_max_bytes,
            on_change=wake,
        )
        app.router.add_post("/api/webhooks/servicenow", snow_webhook.handle)
    if parts.jsm is not None and settings.jsm.webhook_secrets:
        jsm_webhook = JsmWebhook(
            [s.get_secret_value() for s in settings.jsm.webhook_secrets],
            store,
            parts.jsm.client.get,
            max_bytes=settings.webhook_max_bytes,
            on_change=wake,
        )
        app.router.add_post("/api/webhooks/jsm", jsm_webhook.handle)
