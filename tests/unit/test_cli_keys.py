"""The `keys` commands: a new key, and rotation of the stored rows to the first key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from core.crypto import PayloadCipher, UnreadablePayload, ensure_dev_key, is_valid_key
from core.store import outbox
from core.store.schema import outbox as outbox_table
from core.store.store import Store
from tests.support import NEW_ENCRYPTION_KEY

runner = CliRunner()


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated var/ directory (sandbox mode, its generated key), on a wide terminal."""
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    for name in ("WARDEN_DATABASE_URL", "WARDEN_ENCRYPTION_KEYS", "WARDEN_MODE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _store(var_dir: Path, keys: list[str]) -> Store:
    url = f"sqlite+aiosqlite:///{(var_dir / 'warden.db').resolve()}"
    return Store.from_url(url, cipher=PayloadCipher(keys))


def _add_jobs(var_dir: Path, count: int) -> None:
    """Store ``count`` jobs under the sandbox's generated key."""

    async def run() -> None:
        store = _store(var_dir, [ensure_dev_key(var_dir)])
        try:
            await store.upgrade()
            rows = [
                outbox.job_row("incident.card", f"k{n}", {"n": n}, cipher=store.cipher)
                for n in range(count)
            ]
            async with store.writing() as conn:
                await conn.execute(outbox_table.insert(), rows)
        finally:
            await store.close()

    asyncio.run(run())


def _payloads(var_dir: Path, keys: list[str]) -> list[object]:
    async def run() -> list[object]:
        store = _store(var_dir, keys)
        try:
            return [job.payload for job in await outbox.list_jobs(store)]
        finally:
            await store.close()

    return asyncio.run(run())


def test_cli_keys_generate_prints_new_valid_key(var_dir: Path) -> None:
    """`keys generate` prints a fresh Fernet key, different each time."""
    first = runner.invoke(cli, ["keys", "generate"])
    second = runner.invoke(cli, ["keys", "generate"])
    assert first.exit_code == 0 and is_valid_key(first.output.strip())
    assert first.output != second.output


def test_cli_keys_rotate_rows_readable_with_new_key_alone(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keys rotate` with a new key in front re-encrypts every row; the old key can go."""
    _add_jobs(var_dir, 5)
    old = ensure_dev_key(var_dir)
    monkeypatch.setenv("WARDEN_ENCRYPTION_KEYS", f"{NEW_ENCRYPTION_KEY},{old}")
    result = runner.invoke(cli, ["keys", "rotate", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "outbox.payload 5" in result.output
    assert sorted(_payloads(var_dir, [NEW_ENCRYPTION_KEY]), key=str) == [{"n": n} for n in range(5)]
    with pytest.raises(UnreadablePayload):
        _payloads(var_dir, [old])
    again = runner.invoke(cli, ["keys", "rotate"])
    assert again.exit_code == 0 and "outbox.payload 0" in again.output
    log = runner.invoke(cli, ["admin-log"])
    assert log.output.count("keys.rotate") == 2


def test_cli_old_key_removed_too_early_clear_error(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading rows whose key was removed fails with a message naming the column, exit 1."""
    _add_jobs(var_dir, 1)
    monkeypatch.setenv("WARDEN_ENCRYPTION_KEYS", NEW_ENCRYPTION_KEY)
    result = runner.invoke(cli, ["dlq", "show", "1"])
    assert result.exit_code == 1
    assert "outbox.payload" in result.output and "WARDEN_ENCRYPTION_KEYS" in result.output
    rotate = runner.invoke(cli, ["keys", "rotate"])
    assert rotate.exit_code == 1 and "outbox.payload" in rotate.output


def test_cli_keys_rotate_unmigrated_database_refused(var_dir: Path) -> None:
    """`keys rotate` on a database that is not migrated says so and changes nothing."""
    result = runner.invoke(cli, ["keys", "rotate"])
    assert result.exit_code == 1 and "db upgrade" in result.output
