"""What a plain start loads: a Warden without a tenant, SharePoint or an app id starts (store
migrated, worker running) without loading the vendor SDKs and tools it does not wire.

Each start runs in a fresh interpreter, so ``sys.modules`` shows what that start imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STARTS = """
import asyncio, json, sys
from aiohttp import web
from app import create_app
from core.settings import load_settings

async def main():
    runner = web.AppRunner(create_app(load_settings()))
    await runner.setup()  # cleanup_ctx ran: store migrated, writer and worker started
    try:
        print(json.dumps(sorted(sys.modules)))
    finally:
        await runner.cleanup()

asyncio.run(main())
"""

NOT_WIRED = (
    "msgraph",  # Graph: no Azure identity, no SharePoint site
    "kiota_abstractions",
    "azure.core",  # no tenant: no Azure credential
    "azure.identity",
    "msal",
    "botbuilder.core",  # no app id: no Connector token to ask botbuilder for
    "msrest",
    "PIL",  # manifest icons: the manifest commands only
    "sandbox.embedded",  # the embedded sandboxes: --playground only
    "cli.doctor_probes",  # the doctor command only
    "pyarrow",  # Parquet cost export partitions: read by the ingest only
)


def _started_modules(var_dir: Path, **env: str) -> set[str]:
    """The modules a Warden started with ``env`` (and no other WARDEN_ setting) has loaded."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "AZURE_"))}
    clean.update(WARDEN_VAR_DIR=str(var_dir), MICROSOFT_APP_ID="", **env)
    done = subprocess.run(
        [sys.executable, "-c", STARTS],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_start_without_tenant_loads_no_unwired_sdks(tmp_path: Path) -> None:
    """A sandbox start with nothing connected leaves Graph, Azure identity, botbuilder,
    PIL, pyarrow, the embedded sandboxes and the doctor's probes unloaded, yet serves (store,
    bot)."""
    loaded = _started_modules(tmp_path)
    assert {"core.store.store", "bot.outbound", "core.worker"} <= loaded
    assert [name for name in NOT_WIRED if name in loaded] == []


def test_start_loads_alembic_only_when_migrating_in_process(tmp_path: Path) -> None:
    """A first start migrates the store in a child process and a restart finds nothing to
    do: neither loads alembic. Migrating in process (``WARDEN_MIGRATE_APART=false``), the
    first start does."""
    assert "alembic" not in _started_modules(tmp_path / "apart")
    assert "alembic" not in _started_modules(tmp_path / "apart")
    assert "alembic" in _started_modules(tmp_path / "here", WARDEN_MIGRATE_APART="false")
