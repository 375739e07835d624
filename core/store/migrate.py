"""Database migrations (alembic), run on Warden's own engine: upgrade and version checks.

The revisions this code ships are read from the migration files themselves (their
``revision``/``down_revision`` lines) and the database's from its ``alembic_version`` table,
so a start on a migrated store and every ``/readyz`` answer go without alembic; alembic (and
the SQL dialects it brings) is imported only to apply migrations, or when the files cannot
be read that simply. A server applies them in a child process (``upgrade_apart``).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import MigrationFailed
from core.store.engine import create_engine, sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
ROOT = MIGRATIONS.parent.parent
"""The directory that holds Warden's packages (the migrating child runs from it)."""
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
        if _nothing_missing(current):
            return
        from alembic import command

        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


def _nothing_missing(revision: str | None) -> bool:
    """Current, or a newer release migrated already: nothing of this release is missing."""
    return revision == head_revision() or is_ahead(revision)


CHILD_URL = "WARDEN_MIGRATE_DATABASE_URL"
"""The environment variable that hands the database's URL to the migrating child process
(not its command line, which every user of the machine can read)."""


async def upgrade_apart(engine: AsyncEngine) -> None:
    """``upgrade``, with the migrations applied by a child process when there are any.

    The serving process then never imports alembic, which with the SQL dialects it brings
    would stay resident for good (about 8 MiB, a tenth of Warden's memory at start) after a
    first start or an upgrade. A database in memory is migrated here (a child would open
    another). ``MigrationFailed`` with the child's last words when it fails.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and sqlite_file(url) is None:
        await upgrade(engine)
        return
    if _nothing_missing(await current_revision(engine)):
        return
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.store.migrate",
        cwd=ROOT,
        env={
            **os.environ,
            CHILD_URL: url.render_as_string(hide_password=False),
            "PYTHONPATH": path,
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await child.communicate()
    if child.returncode != 0:
        lines = stderr.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise MigrationFailed(f"the database migration failed: {lines[-1]}")


def _main() -> int:
    """The migrating child: upgrade the database named by ``CHILD_URL``."""

    async def run() -> None:
        engine = create_engine(os.environ[CHILD_URL])
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - told to the parent in one line, on stderr
        sys.stderr.write(f"{type(exc).__name__}: {exc}".replace("\n", " ") + "\n")
        return 1
    return 0


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


if __name__ == "__main__":
    sys.exit(_main())
