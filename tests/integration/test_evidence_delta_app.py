# ruff: noqa: F811  (fixtures imported from test_audit_trail are parameters here)
"""The running Warden watching its SharePoint records: an out-of-band edit in the sandbox
reaches the auditors' channel as a card (real app, real botbuilder, real msgraph-sdk)."""

from __future__ import annotations

from typing import Any

import httpx

from core.settings_delta import DeltaSettings
from graph.audit_verify import SharePointAccess
from graph.sharepoint import create_item
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_audit_trail import (  # noqa: F401  (fixtures)
    SITE,
    access,
    app_identity,
    arm,
    graph,
)
from tests.integration.test_evidence_delta import requests_list
from tests.support import channel_id


def _delta_rounds(graph: GraphSandbox, list_id: str) -> int:
    """How many delta pages of the list Warden has read successfully."""
    return sum(
        1
        for call in graph.calls(successful=True)
        if call.path.endswith("/items/delta()") and list_id in call.path
    )


def _alert(body: Any) -> dict[str, Any] | None:
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
    """A person editing an Evidence Requests item: the auditors' channel gets the alert card."""
    ref = await requests_list(access)
    await create_item(access.graph, ref, {"Title": "ISO-A.8.13 EVR-1", "RequestId": "EVR-1"})
    client_id, secret = app_identity
    auditors = channel_id("auditors")
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
    await graph.wait_for(lambda g: _delta_rounds(g, ref.list_id) >= 1, timeout=30)
    async with httpx.AsyncClient(base_url=graph.url, verify=arm.ssl_context()) as person:
        url = f"/_sandbox/sharepoint/lists/{ref.list_id}/items/1?by=Megan%20Bowen"
        edit = {"fields": {"Title": "ISO-A.8.13 EVR-1 (done)"}}
        (await person.patch(url, json=edit)).raise_for_status()
    posted = await warden.connector.wait_for(
        lambda c: [p for p in c.posts(auditors, successful=True) if _alert(p.body)], timeout=30
    )
    card = _alert(posted[0].body)
    assert card is not None
    text = str(card)
    assert "edited by Megan Bowen" in text and "evidence request item" in text
