"""``cmdb deployments``: the deployments Warden read that touched a CI, and their changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from core.crypto import PayloadCipher, ensure_dev_key
from core.deployments import Deployment
from core.itsm import ConfigurationItem
from core.store import cmdb_cis
from core.store import deployments as deployments_store
from core.store.store import Store

runner = CliRunner()
GROUP = "/subscriptions/s/resourcegroups/rg-web-prod"
APP = f"{GROUP}/providers/microsoft.web/sites/app-web-prod-000001"


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated var/ directory for the command line, on a wide terminal."""
    monkeypatch.setattr(console, "_width", 250)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("WARDEN_DATABASE_URL", raising=False)
    monkeypatch.delenv("WARDEN_ENCRYPTION_KEYS", raising=False)
    return tmp_path


def _deployed_and_linked(var_dir: Path) -> None:
    """A CI, two deployments of it (one linked to CHG0030001 by Ada) and one of another."""

    async def run() -> None:
        store = Store.from_url(
            f"sqlite+aiosqlite:///{(var_dir / 'warden.db').resolve()}",
            cipher=PayloadCipher([ensure_dev_key(var_dir)]),
        )
        try:
            await store.upgrade()
            seen = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
            ci = ConfigurationItem(
                ci_id=APP,
                name="app-web-prod-000001",
                type="microsoft.web/sites",
                last_seen_utc=seen,
            )
            await cmdb_cis.store_page(store, [ci], 1, "{}")
            made = [
                Deployment(
                    deployment_id=f"{GROUP}/providers/microsoft.resources/deployments/{name}",
                    resource_group=GROUP,
                    name=name,
                    state="Succeeded",
                    timestamp=datetime(2025, 3, 14, hour, 0, tzinfo=UTC),
                    targets=(target,),
                )
                for name, hour, target in (
                    ("webapp-release-41", 6, APP),
                    ("webapp-release-42", 7, APP),
                    ("other-stack", 7, f"{GROUP}/providers/microsoft.cdn/profiles/cdn"),
                )
            ]
            await deployments_store.store_deployments(store, made)
            await deployments_store.link(store, made[1], "CHG0030001", "oid-ada", "Ada Lovelace")
        finally:
            await store.close()

    asyncio.run(run())


def test_cli_cmdb_deployments_lists_newest_first_with_linked_changes(var_dir: Path) -> None:
    """By CI name: its two deployments, newest first, the linked change with who linked it."""
    _deployed_and_linked(var_dir)
    result = runner.invoke(cli, ["cmdb", "deployments", "app-web-prod-000001"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("webapp-release-42") < out.index("webapp-release-41")
    assert "CHG0030001 by Ada Lovelace" in out
    assert "other-stack" not in out


def test_cli_cmdb_deployments_unknown_resource_says_so(var_dir: Path) -> None:
    """A resource no deployment touched: the command says so and exits 1."""
    _deployed_and_linked(var_dir)
    result = runner.invoke(cli, ["cmdb", "deployments", "no-such-app"])
    assert result.exit_code == 1
    assert "no deployment Warden has read touched no-such-app" in result.output
