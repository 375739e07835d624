"""``python app.py doctor`` on Jira Service Management and Defender XDR: one real read each
against their sandboxes (JSM's JQL search, Graph security's incidents), skipped when off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.jsm import JsmSandbox, run_jsm_sandbox
from tests.integration.test_doctor import GRAPH_ROLES, World, doctor, world

__all__ = ["world"]  # the fixture, shared with the doctor's other tests

SECURITY_ROLES = [*GRAPH_ROLES, "SecurityIncident.ReadWrite.All"]


@pytest.fixture
async def jsm_site() -> AsyncIterator[JsmSandbox]:
    """The JSM sandbox with its example requests."""
    async with run_jsm_sandbox() as served:
        yield served


def _both(world: World, jsm: JsmSandbox) -> dict[str, str]:
    """The environment additions that configure JSM and Defender XDR."""
    return {
        "WARDEN_JSM__BASE_URL": jsm.url,
        "WARDEN_JSM__EMAIL": jsm.email,
        "WARDEN_JSM__API_TOKEN": jsm.api_token,
        "WARDEN_DEFENDER__ENABLED": "true",
    }


async def test_doctor_jsm_and_defender_configured_read_once_each_and_pass(
    world: World, jsm_site: JsmSandbox
) -> None:
    """Both configured and allowed: ✓ for each, after a JQL search of SEC and a Graph read
    of security incidents really happened; the JSM webhook without secrets is skipped."""
    await world.migrate()
    await world.provision()
    world.arm.register_client(
        world.arm.client_id, world.arm.client_secret, graph_roles=SECURITY_ROLES
    )
    seen = await doctor(world, **_both(world, jsm_site))
    assert seen.code == 0, seen.output
    mark, detail, _ = seen.rows["Jira Service Management"]
    assert mark == "✓" and "project SEC readable" in detail and jsm_site.email in detail
    assert seen.mark("Microsoft Defender XDR") == "✓"
    assert seen.mark("JSM webhook") == "–"
    searches = [r for r in jsm_site.requests if r.path == "/rest/api/3/search/jql"]
    assert len(searches) == 1 and searches[0].status == 200
    assert 'project = "SEC"' in searches[0].body["jql"]
    assert len(world.graph.calls("ListIncidents", successful=True)) == 1
    assert jsm_site.api_token not in seen.output


async def test_doctor_jsm_wrong_token_fails_its_row_naming_the_credentials(
    world: World, jsm_site: JsmSandbox
) -> None:
    """Jira refuses the API token (401): ✗ naming WARDEN_JSM__EMAIL and API_TOKEN, exit 1."""
    await world.migrate()
    await world.provision()
    env = {**_both(world, jsm_site), "WARDEN_JSM__API_TOKEN": "not-the-token"}
    env.pop("WARDEN_DEFENDER__ENABLED")
    seen = await doctor(world, **env)
    assert seen.code == 1
    mark, detail, fix = seen.rows["Jira Service Management"]
    assert mark == "✗" and "401" in detail
    assert "WARDEN_JSM__EMAIL and WARDEN_JSM__API_TOKEN" in fix
    assert "not-the-token" not in seen.output
    assert seen.mark("ServiceNow") == "✓"


async def test_doctor_defender_without_graph_permission_names_the_permission(
    world: World,
) -> None:
    """Warden's app has no SecurityIncident permission: Graph answers 403, the row is ✗ and
    names the application permission to grant; SharePoint through Graph still ✓."""
    await world.migrate()
    await world.provision()
    seen = await doctor(world, WARDEN_DEFENDER__ENABLED="true")
    assert seen.code == 1
    mark, detail, fix = seen.rows["Microsoft Defender XDR"]
    assert mark == "✗" and "403" in detail
    assert "SecurityIncident.ReadWrite.All" in fix
    assert seen.mark("SharePoint") == "✓"


async def test_doctor_jsm_and_defender_switched_off_skipped_without_a_call(
    world: World, jsm_site: JsmSandbox
) -> None:
    """Configured but both flags off: each row – "off (…flag…)", and neither sandbox heard
    from Warden; not configured at all, each row says what to set."""
    await world.migrate()
    await world.provision()
    flags = {
        "WARDEN_CONNECTORS__JSM__ENABLED": "false",
        "WARDEN_CONNECTORS__DEFENDER__ENABLED": "false",
    }
    seen = await doctor(world, **_both(world, jsm_site), **flags)
    assert seen.code == 0, seen.output
    mark, detail, _ = seen.rows["Jira Service Management"]
    assert mark == "–" and detail.startswith("off (WARDEN_CONNECTORS__JSM__ENABLED")
    mark, detail, _ = seen.rows["Microsoft Defender XDR"]
    assert mark == "–" and detail.startswith("off (WARDEN_CONNECTORS__DEFENDER__ENABLED")
    assert jsm_site.requests == [] and world.graph.calls("ListIncidents") == []

    bare = await doctor(world)
    assert "WARDEN_JSM__BASE_URL" in bare.rows["Jira Service Management"][1]
    assert "WARDEN_DEFENDER__ENABLED" in bare.rows["Microsoft Defender XDR"][1]
