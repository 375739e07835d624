"""Concurrent writes on SQLite share one transaction, each still atomic on its own.

``Store.run_write`` groups the writes queued while the writer thread commits the previous
group: one ``COMMIT`` for many, each write in a savepoint. These tests write through a real
store (SQLite, and PostgreSQL where each write keeps its own transaction) and check what a
caller sees: every result, a failing write undone alone with its own error, the others kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, event, select

from core.crypto import PayloadCipher, generate_key
from core.store.schema import conversations
from core.store.store import Store


class Refused(Exception):
    """A write's own failure (a conflict, a rule it checks)."""


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store."""
    store = Store.from_url(database_url, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    yield store
    await store.close()


def _add(conn: Connection, conversation_id: str) -> str:
    conn.execute(
        conversations.insert().values(
            id=conversation_id,
            reference="{}",
            kind="channel",
            active=True,
            created_at=0.0,
            updated_at=0.0,
        )
    )
    return conversation_id.upper()


def _add_then_refuse(conn: Connection, conversation_id: str) -> str:
    _add(conn, conversation_id)
    raise Refused(conversation_id)


async def _stored(store: Store) -> set[str]:
    async with store.reading() as conn:
        return {row.id for row in await conn.execute(select(conversations.c.id))}


async def test_concurrent_writes_each_answered_and_a_refused_one_undone_alone(
    store: Store,
) -> None:
    """Forty writes at once, one of which raises after writing: each caller gets its own
    result, the refused one gets its own error and left nothing, the others are stored."""
    ids = [f"19:c{i}@thread.tacv2" for i in range(40)]
    calls = [
        store.run_write(_add_then_refuse if i == 17 else _add, conversation_id)
        for i, conversation_id in enumerate(ids)
    ]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], Refused)
    assert str(refused[0]) == ids[17]
    assert [a for a in answers if not isinstance(a, BaseException)] == [
        i.upper() for n, i in enumerate(ids) if n != 17
    ]
    assert await _stored(store) == set(ids) - {ids[17]}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_concurrent_writes_share_commits_on_sqlite(store: Store) -> None:
    """Writes that queue behind one another commit together: forty writes at once take
    far fewer than forty commits (one for the first, then one per group)."""
    commits: list[None] = []
    assert store._writer is not None
    writer = store._writer.engine  # the writer thread's engine is what commits
    event.listen(writer, "commit", lambda _conn: commits.append(None))
    ids = [f"19:g{i}@thread.tacv2" for i in range(40)]
    await asyncio.gather(*(store.run_write(_add, i) for i in ids))
    assert await _stored(store) == set(ids)
    assert 1 <= len(commits) <= 5


async def test_a_write_alone_keeps_its_own_transaction(store: Store) -> None:
    """One write at a time: its result, or its error with nothing of it stored."""
    assert await store.run_write(_add, "19:one@thread.tacv2") == "19:ONE@THREAD.TACV2"
    with pytest.raises(Refused):
        await store.run_write(_add_then_refuse, "19:two@thread.tacv2")
    assert await _stored(store) == {"19:one@thread.tacv2"}
