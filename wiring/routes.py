"""The HTTP surface's part of the composition: the edge middlewares, the Sentinel webhook and
every route Warden serves (health, metrics, posture, Teams, webhooks, ITSM, budgets, SCIM).

Called by ``create_app`` once the outbox worker, the adapter and the webhook exist; adding
routes does no I/O.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.adapter import TeamsAdapter
from cards.commands import COMMANDS
from connectors.registry import enabled
from connectors.sentinel.mapping import incident_from_webhook_json
from core.breaker import Breakers
from core.catalog import Catalog
from core.ingest import IngestWriter
from core.metrics import Metrics
from core.recording import Redactor
from core.settings import Mode, Settings
from core.signing import WebhookVerifier
from core.store.store import Store
from core.worker import OutboxWorker
from web.edge import edge_middleware
from web.health import healthz, openapi, readiness, readyz
from web.health import switched_off as sentinel_off
from web.metrics import metrics_handler, refresh_gauges
from web.posture import PostureApi
from web.recording import Recorder, recording_middleware
from web.webhooks import BearerCheck, SentinelWebhook
from wiring import budgets as budgets_wiring
from wiring import itsm as itsm_wiring


def middlewares(settings: Settings, metrics: Metrics) -> list[Middleware]:
    """The edge middleware, then the recorder of accepted inbound requests (innermost) when
    ``WARDEN_RECORD_DIR`` is set."""
    return [edge_middleware(metrics), *_recording(settings)]


def _recording(settings: Settings) -> list[Middleware]:
    """The recorder of accepted inbound requests, innermost, when ``WARDEN_RECORD_DIR`` is set."""
    if settings.record_dir is None:
        return []
    commands = {command.name.split()[0] for command in COMMANDS}
    return [recording_middleware(Recorder(settings.record_dir, Redactor(commands)))]


def sentinel_webhook(
    settings: Settings, writer: IngestWriter, metrics: Metrics, bearer: BearerCheck | None
) -> SentinelWebhook:
    """The signed Sentinel webhook, writing accepted incidents through ``writer``."""
    return SentinelWebhook(
        WebhookVerifier(settings.webhook_secrets),
        writer,
        incident_from_webhook_json,
        max_bytes=settings.webhook_max_bytes,
        metrics=metrics,
        bearer=bearer,
    )


def add(
    app: web.Application,
    settings: Settings,
    *,
    store: Store,
    worker: OutboxWorker,
    breakers: Breakers,
    metrics: Metrics,
    connectors: dict[str, dict[str, str]],
    catalog: Catalog | None,
    adapter: TeamsAdapter,
    webhook: SentinelWebhook,
    bearer: BearerCheck | None,
    itsm: itsm_wiring.ItsmParts,
) -> None:
    """Serve Warden's routes on ``app``; the Sentinel webhook answers as switched off while
    Sentinel's flag is off, and SCIM is mounted only when enabled."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get(
        "/metrics", metrics_handler(metrics, lambda: refresh_gauges(metrics, store, breakers))
    )
    app.router.add_get(
        "/readyz",
        readyz(
            lambda: readiness(
                store, worker, breakers, connectors=connectors, cmdb=settings.cmdb.nightly
            )
        ),
    )
    posture = PostureApi(store, catalog, bearer=bearer, sandbox=settings.mode is Mode.SANDBOX)
    app.router.add_get("/api/posture", posture.handle)
    app.router.add_post("/api/messages", adapter.handle)
    sentinel_on = enabled(settings, "sentinel")
    app.router.add_post("/api/webhooks/sentinel", webhook.handle if sentinel_on else sentinel_off)
    itsm_wiring.routes(app, settings, store, itsm, wake=worker.wake)
    budgets_wiring.route(app, settings, store, worker.wake)
    if settings.scim.enabled:  # Entra ID provisions the roster; leavers' work moves on
        from core.store.roster_leavers import reassign_leaver
        from web.scim import PREFIX as SCIM_PREFIX
        from web.scim import ScimService

        scim = ScimService(store, settings.scim, on_leaver=reassign_leaver)
        app.add_subapp(SCIM_PREFIX, scim.app())
