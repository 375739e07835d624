"""Encryption at rest: what the database holds is unreadable without the keys, on both stores."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import STORE, create_app
from core.crypto import DEV_KEY_FILE, PREFIX, PayloadCipher, UnreadablePayload
from core.errors import SettingsError
from core.itsm import ConfigurationItem
from core.store import admin_audit, cmdb_cis, outbox, rekey
from core.store.schema import outbox as outbox_table
from core.store.schema_links import cmdb_cis as cmdb_cis_table
from core.store.schema_sealed import SEALED
from core.store.store import Store
from sandbox.sentinel_samples import updated_incident
from tests.integration.conftest import Warden, WardenFactory, incident
from tests.support import ENCRYPTION_KEY, NEW_ENCRYPTION_KEY, SECRET, make_settings

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Ransomware on FIN-SRV-02 (canary title)"
DESCRIPTION = "Canary description: files encrypted on the finance share"
OWNER_NAME, OWNER_EMAIL = "Adele Vance", "adele.vance@contoso.com"
TEAM_NAME = "Security Operations"


async def _sealed_values(database_url: str) -> list[str]:
    """Every stored value of every sealed column, read straight from the database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            values = []
            for column in SEALED:
                query = text(f"SELECT {column.name} FROM {column.table.name}")
                values += [row[0] for row in await conn.execute(query)]
    finally:
        await engine.dispose()
    return values


async def _journey(warden: Warden) -> tuple[str, dict[str, Any]]:
    """A subscribed channel gets an incident, then its update naming the owner."""
    conversation = await warden.subscribed_channel()
    resource = incident(title=TITLE)
    resource["properties"]["description"] = DESCRIPTION
    assert (await warden.webhook(resource)).status == 202
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    newer = updated_incident(resource)
    assert (await warden.webhook(newer)).status == 202
    await warden.delivered(2)
    return conversation, newer


async def _rotate_cli(database_url: str, var_dir: Path, keys: str) -> str:
    """Run `python app.py keys rotate` as an operator would; returns what it printed."""
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_VAR_DIR": str(var_dir),
        "WARDEN_ENCRYPTION_KEYS": keys,
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "keys",
        "rotate",
        "--batch-size",
        "2",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()
    return output.decode()


async def test_encryption_webhook_journey_raw_rows_hold_no_incident_text(
    warden: Warden, database_url: str
) -> None:
    """After a webhook journey the card shows title, description and owner; the rows do not."""
    conversation, _ = await _journey(warden)
    cards = [str(r.body) for r in warden.connector.posts(conversation, successful=True)]
    updates = [str(r.body) for r in warden.connector.updates(conversation, successful=True)]
    assert any(TITLE in card and DESCRIPTION[:40] in card for card in cards)
    assert any(OWNER_NAME in card for card in updates)
    values = await _sealed_values(database_url)
    assert len(values) >= 4  # one incident, one conversation, two card jobs
    for value in values:
        assert value.startswith(PREFIX), value[:40]
        for clear in (TITLE, DESCRIPTION, OWNER_NAME, OWNER_EMAIL, TEAM_NAME):
            assert clear not in value
    if database_url.startswith("sqlite"):
        database = Path(str(make_url(database_url).database))
        for path in (database, database.with_name(database.name + "-wal")):
            raw = path.read_bytes() if path.exists() else b""
            for clear in (TITLE, DESCRIPTION, OWNER_EMAIL, TEAM_NAME):
                assert clear.encode() not in raw, f"{clear!r} in {path.name}"


async def test_encryption_keys_rotate_old_key_removable_warden_reads_all(
    start_warden: WardenFactory, database_url: str, tmp_path: Path
) -> None:
    """`keys rotate` moves every row to the new key: Warden runs on the new key alone."""
    before = await start_warden(encryption_keys=ENCRYPTION_KEY)
    conversation, newer = await _journey(before)
    await before.client.close()  # SQLite serves one replica at a time

    output = await _rotate_cli(database_url, tmp_path, f"{NEW_ENCRYPTION_KEY},{ENCRYPTION_KEY}")
    assert "incidents.payload 1" in output and "conversations.reference 1" in output
    values = await _sealed_values(database_url)
    new_only, old_only = PayloadCipher([NEW_ENCRYPTION_KEY]), PayloadCipher([ENCRYPTION_KEY])
    for value in values:
        assert new_only.decrypt(value, "sealed")
        with pytest.raises(UnreadablePayload):
            old_only.decrypt(value, "sealed")
    again = await _rotate_cli(database_url, tmp_path, f"{NEW_ENCRYPTION_KEY},{ENCRYPTION_KEY}")
    assert "incidents.payload 0" in again and "outbox.payload 0" in again  # idempotent

    after = await start_warden(encryption_keys=NEW_ENCRYPTION_KEY)
    store = after.client.app[STORE]
    stored = await store.incident(str(newer["id"]).lower())
    assert stored is not None and stored.title == TITLE and stored.owner.email == OWNER_EMAIL
    assert (await store.conversation(conversation)) is not None
    assert all(job.payload for job in await outbox.list_jobs(store))
    newest = updated_incident(newer)
    assert (await after.webhook(newest)).status == 202
    await after.delivered(3)
    actions = [entry.action for entry in await admin_audit.entries(store)]
    assert actions.count(rekey.ROTATE_ACTION) == 2


async def test_encryption_rotate_while_warden_ingests_nothing_left_on_old_key(
    start_warden: WardenFactory, database_url: str
) -> None:
    """Rotation in small batches while webhooks keep arriving leaves no row on the old key."""
    before = await start_warden(encryption_keys=ENCRYPTION_KEY)
    await before.subscribed_channel()
    for n in range(6):
        assert (await before.webhook(incident(title=f"before {n}"))).status == 202
    await before.client.close()

    both = f"{NEW_ENCRYPTION_KEY},{ENCRYPTION_KEY}"
    running = await start_warden(encryption_keys=both)
    rotating = Store.from_url(
        database_url, cipher=PayloadCipher([NEW_ENCRYPTION_KEY, ENCRYPTION_KEY])
    )
    try:

        async def ingest() -> None:
            for n in range(6):
                assert (await running.webhook(incident(title=f"during {n}"))).status == 202

        await asyncio.gather(ingest(), rekey.rotate(rotating, actor="test", batch_size=1))
    finally:
        await rotating.close()
    new_only = PayloadCipher([NEW_ENCRYPTION_KEY])
    values = await _sealed_values(database_url)
    assert len(values) >= 13  # 12 incidents, a conversation, their jobs
    assert all(new_only.decrypt(value, "sealed") for value in values)


async def test_encryption_unreadable_job_quarantined_not_stalling(database_url: str) -> None:
    """A job no key decrypts is set aside with a reason naming it; the others still run."""
    writer = Store.from_url(database_url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    reader = Store.from_url(database_url, cipher=PayloadCipher([NEW_ENCRYPTION_KEY]))
    try:
        await writer.upgrade()
        lost = outbox.job_row("incident.card", "a", {"n": 1}, cipher=writer.cipher)
        fine = outbox.job_row("incident.card", "b", {"n": 2}, cipher=reader.cipher)
        async with writer.writing() as conn:
            await conn.execute(outbox_table.insert(), [lost, fine])
        claimed = await outbox.claim(reader, 10, 30)
        assert [job.payload for job in claimed] == [{"n": 2}]
        (dead,) = await outbox.list_jobs(writer, outbox.QUARANTINED)
        assert dead.last_error is not None and "outbox.payload" in dead.last_error
        with pytest.raises(UnreadablePayload, match=r"outbox\.payload"):
            await outbox.get_job(reader, dead.id)
    finally:
        await writer.close()
        await reader.close()


async def test_encryption_cmdb_ci_tags_sealed_and_read_back(database_url: str) -> None:
    """A CI's tags (its owner tag names a person) are sealed in ``cmdb_cis``; the CI reads
    back with them; a CI stored before tags were sealed still reads, and ``keys rotate``
    seals it."""
    store = Store.from_url(database_url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    try:
        await store.upgrade()
        tags = [f"owner={OWNER_EMAIL}", "env=prod"]
        item = ConfigurationItem(
            ci_id="/subscriptions/s1/resourcegroups/rg/providers/microsoft.web/sites/app1",
            name="app1",
            type="microsoft.web/sites",
            owner=OWNER_EMAIL,
            env="prod",
            tags=tags,
            last_seen_utc=datetime.now(UTC),
        )
        await cmdb_cis.store_page(store, [item], 1, "{}")
        assert not [v for v in await _sealed_values(database_url) if OWNER_EMAIL in v]
        (stored,) = await cmdb_cis.cis(store, ids=[item.ci_id])
        assert stored.item.tags == tags and stored.item.owner == OWNER_EMAIL
        async with store.writing() as conn:  # as a release before sealed tags wrote it
            await conn.execute(update(cmdb_cis_table).values(tags=json.dumps(tags)))
        (legacy,) = await cmdb_cis.cis(store, ids=[item.ci_id])
        assert legacy.item.tags == tags
        await rekey.rotate(store, actor="test", batch_size=10)
        assert not [v for v in await _sealed_values(database_url) if OWNER_EMAIL in v]
    finally:
        await store.close()


def test_encryption_production_without_keys_refuses_to_start(tmp_path: Path) -> None:
    """Production mode without WARDEN_ENCRYPTION_KEYS does not start, naming the variable."""
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}",
        mode="production",
        microsoft_app_id="6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f",
        microsoft_app_password="canary-password-never-sent",
    )
    with pytest.raises(SettingsError, match="WARDEN_ENCRYPTION_KEYS: required in production"):
        create_app(settings)


async def test_encryption_production_serve_without_keys_exits_naming_variable(
    tmp_path: Path,
) -> None:
    """`python app.py serve` in production mode without keys exits at once, naming it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        WARDEN_MODE="production",
        WARDEN_VAR_DIR=str(tmp_path),
        WARDEN_PORT="0",
        WARDEN_SENTINEL_WEBHOOK_SECRETS=SECRET,
        MICROSOFT_APP_ID="6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f",
        MICROSOFT_APP_PASSWORD="canary-password-never-sent",
        COLUMNS="200",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "serve",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert "WARDEN_ENCRYPTION_KEYS: required in production mode" in output.decode()
    assert not _dev_key_exists(tmp_path)


def _dev_key_exists(var_dir: Path) -> bool:
    return (var_dir / DEV_KEY_FILE).exists()
