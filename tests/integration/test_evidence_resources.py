"""Evidence cards of a policy request show its resources' Azure CIs and their 30-day cost.

The real app posts the cards to the Bot Connector sandbox; the CIs are stored as the CMDB
sync stores a page, and the costs as the cost exports ingest a partition (on SQLite and
PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app import STORE
from cards.verbs import CardVerb
from core.costs import ExportRun, ResourceDay
from core.itsm import ConfigurationItem
from core.store import cmdb_cis
from core.store import costs as costs_store
from core.store.store import Store
from tests.integration.conftest import WardenFactory
from tests.integration.policy_support import CHANNEL, open_policy_request
from tests.integration.test_evidence_chat import CATALOG, OWNER, Room, text_of

SUB = "0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage"
ALPHA = f"{GROUP}/storageAccounts/stalpha"
BRAVO = f"{GROUP}/storageAccounts/stbravo"
ATTESTATION = "Secure transfer is on since the change CHG0030001."


@pytest.fixture
async def room(tmp_path: Path, start_warden: WardenFactory) -> Room:
    """Warden with the chat tests' catalog, installed in the compliance channel."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    warden = await start_warden(requirements_file=catalog)
    await warden.install(CHANNEL)
    return Room(warden, CHANNEL)


def store_of(room: Room) -> Store:
    store: Store = room.warden.client.app[STORE]
    return store


async def sync_ci(store: Store, resource: str, *, owner: str, env: str) -> None:
    """The CMDB sync stores ``resource`` as an Azure storage account CI (run 1)."""
    item = ConfigurationItem(
        ci_id=resource.lower(),
        name=resource.rsplit("/", 1)[-1],
        type="microsoft.storage/storageaccounts",
        owner=owner,
        env=env,
        last_seen_utc=datetime.now(UTC),
    )
    await cmdb_cis.store_page(store, [item], 1, '{"run": 1}')


async def ingest_costs(store: Store, costs: list[tuple[str, date, float]]) -> None:
    """One completed export run reporting ``costs`` (resource, day, EUR)."""
    days = [
        ResourceDay(rid.lower(), day.isoformat(), cost, "EUR", SUB, "rg-data")
        for rid, day, cost in costs
    ]
    run = ExportRun("run-1", "daily|202611", "run-1", "2026-10-01", "2026-12-31", 1.0, 1)
    blob_id = await costs_store.start_blob(store, run, "daily/part_0.csv.gz", "etag-1")
    assert await costs_store.finish_blob(store, blob_id, len(days), days)


async def test_policy_request_cards_show_the_resource_ci_and_its_cost(room: Room) -> None:
    """The owner's and the reviewers' cards list the resource's CI and its last 30 days' cost
    (a day older than that is not counted)."""
    store = store_of(room)
    today = datetime.now(UTC).date()
    await sync_ci(store, ALPHA, owner="Data Team", env="prod")
    await ingest_costs(
        store,
        [
            (ALPHA, today, 1.25),
            (ALPHA, today - timedelta(days=3), 12.5),
            (ALPHA, today - timedelta(days=45), 100.0),
        ],
    )
    await open_policy_request(room, "ISO-A.5.15", ALPHA)
    owner_card = text_of(room.owner_card())
    assert "Configuration items" in owner_card
    assert "Azure storage account · prod · Data Team · Cost (30 days): 13.75 EUR" in owner_card
    await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "attestation", "attestation": ATTESTATION}
    )
    reviewers_card = text_of(room.reviewers_card())
    assert "Azure storage account · prod · Data Team · Cost (30 days): 13.75 EUR" in reviewers_card


async def test_policy_request_resource_unknown_to_cmdb_and_costs_shows_neither(
    room: Room,
) -> None:
    """A resource the CMDB has not synced and no export reported: no CI, no cost on the card;
    another resource's CI and cost stay off it."""
    store = store_of(room)
    await sync_ci(store, ALPHA, owner="Data Team", env="prod")
    await ingest_costs(store, [(ALPHA, datetime.now(UTC).date(), 5.0)])
    await open_policy_request(room, "ISO-A.5.15", BRAVO)
    card = text_of(room.owner_card())
    assert "stbravo" in card
    assert "Configuration items" not in card and "Cost (" not in card and "stalpha" not in card


async def test_policy_request_retired_ci_is_not_listed_but_its_cost_is(room: Room) -> None:
    """A CI the CMDB retired is not listed; what the resource cost still shows."""
    store = store_of(room)
    await sync_ci(store, ALPHA, owner="Data Team", env="prod")
    assert await cmdb_cis.finish_run(store, 4, 3, '{"run": 4}') == [ALPHA.lower()]
    await ingest_costs(store, [(ALPHA, datetime.now(UTC).date(), 5.0)])
    await open_policy_request(room, "ISO-A.5.15", ALPHA)
    card = text_of(room.owner_card())
    assert "Configuration items" not in card and "Azure storage account" not in card
    assert "Cost (30 days): 5.00 EUR" in card
