"""Migrations applied by a child process, so a long-running server never loads alembic."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from core.errors import MigrationFailed
from core.store import migrate
from core.store.store import Store

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, json, sys
from core.store.store import Store

async def main(url, apart):
    store = Store.from_url(url)
    try:
        await store.upgrade(apart=apart)
        facts = await store.check()
    finally:
        await store.close()
    loaded = any(name == "alembic" or name.startswith("alembic.") for name in sys.modules)
    print(json.dumps({"revision": facts["revision"], "alembic": loaded}))

asyncio.run(main(sys.argv[1], sys.argv[2] == "apart"))
"""


async def _probe(database_url: str, how: str) -> dict[str, object]:
    """Migrate ``database_url`` in a fresh interpreter; its revision and whether it loaded
    alembic."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROBE,
        database_url,
        how,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def test_upgrade_apart_migrates_without_loading_alembic(database_url: str) -> None:
    """A new database is brought to the newest revision while the calling process never
    imports alembic (``test_start_imports``: a start migrating in process does)."""
    apart = await _probe(database_url, "apart")
    assert apart == {"revision": migrate.head_revision(), "alembic": False}
    store = Store.from_url(database_url)
    try:
        assert (await store.check())["current"] is True
    finally:
        await store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_upgrade_apart_failure_names_its_cause(database_url: str) -> None:
    """A migration that fails in the child fails the start with the child's reason."""
    path = database_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:  # a table in the way of the first migration
        conn.execute("CREATE TABLE conversations (id TEXT)")
    store = Store.from_url(database_url)
    try:
        with pytest.raises(MigrationFailed, match="conversations already exists"):
            await store.upgrade(apart=True)
    finally:
        await store.close()


async def test_upgrade_apart_on_a_current_database_starts_no_child(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database already at the newest revision (any restart) needs no child process."""
    store = Store.from_url(database_url)
    try:
        await store.upgrade()

        async def no_child(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("a child process was started")

        monkeypatch.setattr(asyncio, "create_subprocess_exec", no_child)
        await store.upgrade(apart=True)
        assert (await store.check())["current"] is True
    finally:
        await store.close()


async def test_upgrade_apart_in_memory_migrates_here() -> None:
    """A database in memory cannot be opened by a child: it is migrated in process."""
    store = Store.from_url("sqlite+aiosqlite:///:memory:", timeout=2)
    try:
        await store.upgrade(apart=True)
        assert (await store.check())["current"] is True
    finally:
        await store.close()
