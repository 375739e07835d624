# ruff: noqa: F811  (fixtures imported from test_audit_trail are parameters here)
"""The running Warden watching its SharePoint records: an out-of-band edit in the sandbox
reaches the auditors' channel as a card (real app, real botbuilder, real msgraph-sdk)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import select, update

from app import STORE, WORKER
from core.settings.delta import DeltaSettings
from core.store import outbox
from core.store.delta import OUTSIDE_CHANGE_JOB
from core.store.schema import outbox as outbox_table
from graph.audit_verify import SharePointAccess
from graph.sharepoint import ListRef, create_item
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.test_audit_trail import (  # noqa: F401  (fixtures)
    SITE,
    access,
    app_identity,
    arm,
    graph,
)
from tests.integration.test_evidence_delta import requests_list
from tests.support import channel_id


def delta_rounds(graph: GraphSandbox, list_id: str) -> int:
    """How many delta pages of the list Warden has read successfully."""
    return sum(
        1
        for call in graph.calls(successful=True)
        if call.path.endswith("/items/delta()") and list_id in call.path
    )


def alert_of(body: Any) -> dict[str, Any] | None:
    """The alert card an activity carries, or None."""
    for attachment in body.get("attachments") or []:
        content = attachment.get("content") or {}
        texts = [block.get("text", "") for block in content.get("body", [])]
        if "Evidence record changed outside Warden" in texts:
            return dict(content)
    return None


async def test_app_out_of_band_edit_reaches_auditors_channel_as_card(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    graph: GraphSandbox,
    access: SharePointAccess,
    app_identity: tuple[str, str],
) -> None:
    """A person editing an Evidence Requests item: the auditors' channel gets the alert card;
    the card's job run again (its worker stopped after posting, before marking it done)
    posts no second card."""
    auditors = channel_id("auditors")
    warden, ref = await watching_warden(start_warden, arm, graph, access, app_identity, auditors)
    await edit_request(graph, arm, ref)
    posted = await warden.connector.wait_for(
        lambda c: [p for p in c.posts(auditors, successful=True) if alert_of(p.body)], timeout=30
    )
    card = alert_of(posted[0].body)
    assert card is not None
    text = str(card)
    assert "edited by Megan Bowen" in text and "evidence request item" in text
    await rerun_card_job(warden)
    alerts = [p for p in warden.connector.posts(auditors, successful=True) if alert_of(p.body)]
    assert len(alerts) == 1


async def watching_warden(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    graph: GraphSandbox,
    access: SharePointAccess,
    app_identity: tuple[str, str],
    auditors: str,
) -> tuple[Warden, ListRef]:
    """Warden watching the site (one Evidence Requests item in it) every 0.2 s, installed in
    the channel ``auditors``, its first delta round read; and the Evidence Requests list."""
    ref = await requests_list(access)
    await create_item(access.graph, ref, {"Title": "ISO-A.8.13 EVR-1", "RequestId": "EVR-1"})
    client_id, secret = app_identity
    warden = await start_warden(
        graph_endpoint=graph.graph_url,
        sharepoint_site=str(SITE),
        arm_ca_bundle=arm.ca_path,
        azure_tenant_id=arm.tenant_id,
        azure_client_id=client_id,
        azure_client_secret=secret,
        azure_authority_host=arm.authority,
        auditors_channel=auditors,
        delta=DeltaSettings(poll_seconds=0.2),
    )
    await warden.install(auditors)
    await graph.wait_for(lambda g: delta_rounds(g, ref.list_id) >= 1, timeout=30)
    return warden, ref


async def edit_request(graph: GraphSandbox, arm: ArmSandbox, ref: ListRef) -> None:
    """Megan Bowen edits the Evidence Requests item in SharePoint, outside Warden."""
    async with httpx.AsyncClient(base_url=graph.url, verify=arm.ssl_context()) as person:
        url = f"/_sandbox/sharepoint/lists/{ref.list_id}/items/1?by=Megan%20Bowen"
        edit = {"fields": {"Title": "ISO-A.8.13 EVR-1 (done)"}}
        (await person.patch(url, json=edit)).raise_for_status()


async def rerun_card_job(warden: Any) -> None:
    """Put the done ``audit.outside_change`` job back to pending, as a lease that ran out
    after the post would, and wait until the worker has run it again."""
    store = warden.client.app[STORE]
    table = outbox_table
    kind = table.c.kind == OUTSIDE_CHANGE_JOB
    await warden.client.app[WORKER].wait_until(
        lambda: status_is(store, kind, outbox.DONE), within=30
    )
    async with store.writing() as conn:
        await conn.execute(
            update(table)
            .where(kind)
            .values(status=outbox.PENDING, next_attempt_at=time.time(), lease_until=None)
        )
    await warden.client.app[WORKER].wait_until(
        lambda: status_is(store, kind, outbox.DONE), within=30
    )


async def status_is(store: Any, where: Any, status: str) -> bool:
    """Whether every job matching ``where`` has ``status`` (and there is one)."""
    async with store.reading() as conn:
        found = (await conn.execute(select(outbox_table.c.status).where(where))).scalars().all()
    return bool(found) and all(value == status for value in found)
