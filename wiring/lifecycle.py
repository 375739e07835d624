"""The composition's start-up and shutdown steps, as aiohttp ``cleanup_ctx`` generators.

``create_app`` appends them in an order that matters: cleanup runs in reverse, so the outbox
worker (``services``) stops, finishing its in-flight posts, before the sessions and clients it
posts through are closed (``bot_auth``, ``closing``, ``closing_all``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from bot.adapter import TeamsAdapter
from bot.auth import BotTokenValidator
from bot.triage import TriageDesk
from connectors.sentinel.comments import CommentRelay
from connectors.sentinel.connection import SentinelConnection
from core.errors import WardenError
from core.ingest import IngestWriter
from core.leader import leading
from core.metrics import Metrics
from core.settings import Settings
from core.store.store import Store
from core.worker import OutboxWorker

Closers = list[Callable[[], Awaitable[None]]]
"""What to call, in order, at shutdown (after the worker stopped)."""


async def relaying(
    store: Store, relay: CommentRelay, every: float, metrics: Metrics
) -> AsyncIterator[None]:
    """Relay Sentinel comments to the cards' threads, on one replica at a time."""

    async def round_() -> None:
        try:
            await relay.relay_once()
        except WardenError as exc:  # the store or Sentinel failed: the next round tries again
            logging.getLogger(__name__).warning("comment relay round failed: %s", exc)
        else:
            metrics.sync_last_success.labels("sentinel.comments").set(time.time())

    async with leading(store, "sentinel-comments", round_, every=every):
        yield


async def closing(
    sentinel: SentinelConnection | None, triage: TriageDesk | None
) -> AsyncIterator[None]:
    """Close the Sentinel and Graph clients after the worker has stopped."""
    try:
        yield
    finally:
        if triage is not None:
            await triage.aclose()
        if sentinel is not None:
            await sentinel.aclose()


async def closing_all(closers: Closers) -> AsyncIterator[None]:
    """Call ``closers`` at shutdown (after the worker stopped)."""
    try:
        yield
    finally:
        for close in closers:
            await close()


async def bot_auth(
    http: httpx.AsyncClient, validator: BotTokenValidator | None, adapter: TeamsAdapter
) -> AsyncIterator[None]:
    """Warm the bot token keys at start; close the Teams adapter, then the keys' HTTP client,
    at shutdown (after the worker stopped, so no post loses its session)."""
    if validator is not None:
        await validator.keys.refresh()  # warm up; a failure is logged, turns get 401 meanwhile
    try:
        yield
    finally:
        await adapter.close()
        await http.aclose()


async def services(
    settings: Settings, store: Store, writer: IngestWriter, worker: OutboxWorker
) -> AsyncIterator[None]:
    """Open the store (migrating it when ``WARDEN_AUTO_MIGRATE`` is on), start the ingest writer
    and the outbox worker; at shutdown stop them in that order and close the store last."""
    store.claim_single_replica()
    if settings.auto_migrate:
        await store.upgrade(apart=settings.migrate_apart)
    await writer.start()
    await worker.start()
    try:
        yield
    finally:
        await writer.stop()
        await worker.stop()
        await store.close()
