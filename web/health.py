"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can do its work)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.breaker import Breakers
from core.store import cmdb_cis, outbox
from core.store.store import Store
from core.worker import OutboxWorker
from web.openapi import served_document
from web.problems import problem

Readiness = Callable[[], Awaitable[dict[str, Any]]]


def mounted_routes(app: web.Application) -> set[tuple[str, str]]:
    """The ``(METHOD, path)`` of every route ``app`` serves (its sub-applications' too)."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this Warden: only the routes its application mounts."""
    return web.json_response(served_document(mounted_routes(request.app)))


async def healthz(_request: web.Request) -> web.Response:
    """Always 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


def readyz(check: Readiness) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering 200 when every check passes, 503 otherwise, with the details."""

    async def handler(_request: web.Request) -> web.Response:
        checks = await check()
        ready = all(bool(item.get("ok")) for item in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    return handler


async def switched_off(_request: web.Request) -> web.Response:
    """The Sentinel webhook while its connector is switched off: 503, saying so."""
    return problem(
        503,
        "Connector switched off",
        "The Microsoft Sentinel connector is switched off here "
        "(WARDEN_CONNECTORS__SENTINEL__ENABLED=false): nothing was accepted.",
        slug="connector-off",
    )


async def readiness(
    store: Store,
    worker: OutboxWorker,
    breakers: Breakers,
    *,
    connectors: dict[str, dict[str, str]] | None = None,
    cmdb: bool = False,
) -> dict[str, Any]:
    """The facts ``/readyz`` reports: store and migrations, worker, outbox, breakers, and
    each connector's version and state (informative: a connector off is not unready);
    with ``cmdb`` (the nightly sync runs here), its last run and CI counts (informative)."""
    store_facts = await store.check()
    counts = await outbox.counts(store) if store_facts.get("reachable") else {}
    dlq = sum(counts.get(status, 0) for status in outbox.DLQ)
    facts = {
        "store": {"ok": bool(store_facts.get("current")), **store_facts},
        "worker": {"ok": worker.running},
        "outbox": {"ok": True, "pending": counts.get("pending", 0), "dlq": dlq},
        "breakers": {"ok": True, "hosts": breakers.snapshot()},
        "connectors": {"ok": True, **(connectors or {})},
    }
    if cmdb and store_facts.get("current"):
        facts["cmdb"] = {"ok": True, **await cmdb_cis.summary(store)}
    return facts
