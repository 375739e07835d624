"""Database migrations (alembic), run on Warden's own engine: upgrade and version checks."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def known_revisions() -> frozenset[str]:
    """Every revision this code ships."""
    scripts = ScriptDirectory.from_config(_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


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
        if is_ahead(await conn.run_sync(_revision_of)):
            return  # a newer release migrated already; nothing of ours is missing
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


def _revision_of(sync: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(sync).get_current_revision()
    return revision


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(_revision_of)
