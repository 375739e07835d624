"""scim2-tester's compliance checks against Warden's live SCIM endpoint, over HTTP."""

from __future__ import annotations

import asyncio

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.integration.conftest import WardenFactory
from tests.integration.scim_support import TOKEN, scim_warden

FAILED = (Status.ERROR, Status.CRITICAL)


def _check(base_url: str) -> list[CheckResult]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as http:
        return check_server(SyncSCIMClient(http))


async def test_scim_tester_live_endpoint_no_failed_check(start_warden: WardenFactory) -> None:
    """Every check scim2-tester runs (discovery, CRUD, PATCH, errors) passes or is tolerated."""
    scim = await scim_warden(start_warden)
    base_url = str(scim.warden.client.make_url("/scim/v2"))
    results = await asyncio.to_thread(_check, base_url)
    failed = [f"{r.title}: {r.reason}" for r in results if r.status in FAILED]
    assert not failed, "\n".join(failed)
    passed = [r for r in results if r.status is Status.SUCCESS]
    assert len(passed) > 50  # the checks really ran: discovery and both resource types
