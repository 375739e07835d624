# ruff: noqa: F811  (fixtures imported from test_evidence_delta are parameters here)
"""Each change to an evidence record is alerted on once, however often the watch reads it:
a delta link lost or restored from before the change, a resync that meets an item it
already alerted on (Graph sandbox, real msgraph-sdk)."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, update

from core.audit_chain import AuditAction
from core.store import checkpoints, evidence_audit
from core.store import delta as delta_store
from core.store.schema_delta import delta_items
from core.store.store import Store
from graph.delta_watch import ChangeWatch
from sandbox.graph import GraphSandbox
from tests.integration.test_audit_trail import audit_log
from tests.integration.test_evidence_delta import (  # noqa: F401  (fixtures)
    REPLACEMENT,
    access,
    app_id,
    arm,
    card_jobs,
    evidence_file,
    graph,
    person,
    store,
    watch,
)


async def outside_entries(store: Store) -> int:
    """How many audit entries record a change made outside Warden."""
    entries = await evidence_audit.audit_entries(store)
    return sum(1 for entry in entries if entry.action is AuditAction.CHANGED_OUTSIDE_WARDEN)


async def restore_cursor(store: Store, source: str, link: str, etags: dict[str, str]) -> None:
    """Put a source's delta link and accounted eTags back as they were (a store restored
    from a backup taken before the round, or a link write that was lost)."""
    await checkpoints.save(store, delta_store.checkpoint_name(source), link)
    async with store.writing() as conn:
        for item_id, etag in etags.items():
            await conn.execute(
                update(delta_items)
                .where(delta_items.c.source == source, delta_items.c.item_id == item_id)
                .values(etag=etag)
            )


async def test_delta_link_restored_from_before_change_alerts_once(
    store: Store,
    graph: GraphSandbox,
    watch: ChangeWatch,
    person: httpx.AsyncClient,
) -> None:
    """A replaced file alerted on, then the link and eTags put back as they were before:
    the round reads the same change again, and there is still one card, one audit entry."""
    link = await checkpoints.load(store, delta_store.checkpoint_name("evidence"))
    assert link is not None
    before = await delta_store.known(store, "evidence")
    drive_id, item_id = evidence_file(graph)
    url = f"/_sandbox/sharepoint/drives/{drive_id}/items/{item_id}/content"
    (await person.put(url, content=REPLACEMENT)).raise_for_status()
    first = await watch.run_once()
    assert first.count == 1
    assert (len(await card_jobs(store)), await outside_entries(store)) == (1, 1)
    await restore_cursor(store, "evidence", link, before)
    again = await watch.run_once()
    assert again.count == 0
    assert (len(await card_jobs(store)), await outside_entries(store)) == (1, 1)
    (await person.put(url, content=REPLACEMENT + b"again")).raise_for_status()
    assert (await watch.run_once()).count == 1  # a newer change is a new alert
    assert (len(await card_jobs(store)), await outside_entries(store)) == (2, 2)


async def test_delta_resync_meets_item_already_alerted_posts_nothing_more(
    store: Store,
    graph: GraphSandbox,
    watch: ChangeWatch,
    person: httpx.AsyncClient,
) -> None:
    """An Audit Log item edited and alerted on; the eTags Warden kept are lost and the link
    expires (410 Gone): the resync meets the same item version, and posts no second alert."""
    log, by_seq = audit_log(graph)
    items = f"/_sandbox/sharepoint/lists/{log.id}/items"
    edit = {"fields": {"Actor": "someone@else"}}
    (await person.patch(f"{items}/{by_seq[1].id}", json=edit)).raise_for_status()
    first = await watch.run_once()
    assert [c.name for c in first.changes["audit"]] == ["Seq 1"]
    assert (len(await card_jobs(store)), await outside_entries(store)) == (1, 1)
    async with store.writing() as conn:
        await conn.execute(delete(delta_items).where(delta_items.c.source == "audit"))
    (await person.post("/_sandbox/delta/expire")).raise_for_status()
    again = await watch.run_once()
    assert "audit" in again.resynced
    assert again.changes["audit"] == []
    assert (len(await card_jobs(store)), await outside_entries(store)) == (1, 1)
