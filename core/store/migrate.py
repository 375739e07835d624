"""Database migrations (alembic), run on Warden's own engine: upgrade and version checks.

The revisions this code ships are read from the migration files themselves (their
``revision``/``down_revision`` lines) and the database's from its ``alembic_version`` table,
so a start on a migrated store and every ``/readyz`` answer go without alembic; alembic (and
the SQL dialects it brings) is imported only to apply migrations, or when the files cannot
be read that simply.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _chain() -> tuple[str | None, frozenset[str]]:
    """The head and every revision, from the migration files (alembic when ambiguous)."""
    parents: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = _revision_lines(path)
        if found is None:
            continue
        revision, down = found
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return _alembic_chain()  # a merge (tuple of parents) or an unusual file
        parents[revision] = down
    heads = set(parents) - set(parents.values())
    if len(heads) != 1:
        return _alembic_chain()
    return heads.pop(), frozenset(parents)


def _revision_lines(path: Path) -> tuple[object, object] | None:
    """A migration file's ``revision`` and ``down_revision`` literals (None: not a migration)."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    values[target.id] = node
    if "revision" not in values:
        return None
    return values["revision"], values.get("down_revision")


def _alembic_chain() -> tuple[str | None, frozenset[str]]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    revisions = frozenset(script.revision for script in scripts.walk_revisions())
    return scripts.get_current_head(), revisions


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return _chain()[0]


def known_revisions() -> frozenset[str]:
    """Every revision this code ships."""
    return _chain()[1]


def is_ahead(revision: str | None) -> bool:
    """True when the database was migrated by a newer release than this code.

    Migrations expand before they contract (docs/deploy.md), so this release still works on
    that schema: during a rolling upgrade the replicas not yet replaced keep serving.
    """
    return revision is not None and revision not in known_revisions()


MIGRATION_LOCK = 0x5741524445_4E  # "WARDEN": one replica migrates, the others wait


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision (idempotent).

    On PostgreSQL, replicas starting together take turns through an advisory lock held for
    the migration's transaction: the first migrates, the others then find nothing to do.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        current = await conn.run_sync(_revision_of)
        if current == head_revision() or is_ahead(current):
            return  # current, or a newer release migrated already: nothing of ours is missing
        from alembic import command

        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


def _revision_of(sync: Connection) -> str | None:
    """The revision in ``alembic_version`` (None: an empty database)."""
    if not inspect(sync).has_table(VERSION_TABLE):
        return None
    rows = sync.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # several heads: only alembic knows what that means
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(sync).get_current_revision()
    return str(rows[0]) if rows else None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(_revision_of)
