"""Budget scopes subscribed from Teams (``subscribe budgets``): scope → conversation.

A scope (``<subscription>`` or ``<subscription>/<group>``, lower case, see
``core.budgets.scope_key``) goes to one conversation; subscribing it from another moves it
there. Each change is recorded in the administration audit, in its transaction.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import OperationalError

from core.errors import StoreUnavailable
from core.store import admin_audit
from core.store.schema_budgets import budget_subscriptions
from core.store.store import Store

_TABLE = budget_subscriptions


async def subscribe(store: Store, key: str, conversation_id: str, *, by: str) -> str | None:
    """Send the alerts of scope ``key`` to ``conversation_id``; the conversation that had
    them before (None when none did, or when it was this one)."""
    values = {"conversation_id": conversation_id, "created_by": by, "created_at": time.time()}
    before = select(_TABLE.c.conversation_id).where(_TABLE.c.scope_key == key)
    stmt = store.insert(_TABLE).values(scope_key=key, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["scope_key"], set_=values)
    async with store.writing() as conn:
        previous = (await conn.execute(before)).scalar()
        await conn.execute(stmt)
        await admin_audit.record(conn, by, "subscribe budgets", conversation_id, scope=key)
    return None if previous in (None, conversation_id) else str(previous)


async def unsubscribe(store: Store, key: str, conversation_id: str, *, by: str) -> bool:
    """Stop posting the alerts of scope ``key`` to ``conversation_id``; True when it had them."""
    stmt = delete(_TABLE).where(
        _TABLE.c.scope_key == key, _TABLE.c.conversation_id == conversation_id
    )
    async with store.writing() as conn:
        done = await conn.execute(stmt)
        if done.rowcount:
            await admin_audit.record(conn, by, "unsubscribe budgets", conversation_id, scope=key)
    return bool(done.rowcount)


async def routes(store: Store, subscription_id: str) -> dict[str, str]:
    """The chat mappings of a subscription and its resource groups: scope key → conversation
    (``StoreUnavailable`` when the store cannot answer)."""
    sub = subscription_id.lower()
    stmt = select(_TABLE.c.scope_key, _TABLE.c.conversation_id).where(
        or_(_TABLE.c.scope_key == sub, _TABLE.c.scope_key.startswith(f"{sub}/", autoescape=True))
    )
    try:
        async with store.reading() as conn:
            rows = (await conn.execute(stmt)).all()
    except OperationalError as exc:
        raise StoreUnavailable(f"store read failed: {exc.orig!r}") from exc
    return {row.scope_key: row.conversation_id for row in rows}


async def scopes_of(store: Store, conversation_id: str) -> list[str]:
    """The scope keys whose budget alerts go to ``conversation_id``, sorted."""
    stmt = (
        select(_TABLE.c.scope_key)
        .where(_TABLE.c.conversation_id == conversation_id)
        .order_by(_TABLE.c.scope_key)
    )
    async with store.reading() as conn:
        return [str(key) for key in (await conn.execute(stmt)).scalars()]
