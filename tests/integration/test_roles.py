"""Warden's roles from Entra ID, checked on commands and card actions, and ``whoami``.

Warden runs connected to the ARM sandbox, whose Graph answers ``checkMemberGroups``,
``groups/{id}``, ``servicePrincipals/{id}`` and ``users/{id}/appRoleAssignments`` from its
directory; the real msgraph-sdk asks it over HTTPS.
"""

from __future__ import annotations

from typing import Any

from cards.verbs import CardVerb
from core.roles import SourceKind
from core.store import triage as triage_store
from sandbox.arm import ArmSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import connected_settings, open_desk
from tests.support import USER, channel_id

PERSON = str(USER["aadObjectId"])
RESPONDERS = "6f1c2e8a-41a4-4c57-9a55-0c1f4d1b2e77"
OPERATORS = "0b5d7a3c-9e21-4f8b-a6d4-3c2e1f0a9b88"
WARDEN_SP = "5a4e3d2c-1b0a-4f9e-8d7c-6b5a4c3d2e1f"


def _texts(card: dict[str, Any]) -> str:
    return str(card)


def _app_roles(arm: ArmSandbox) -> dict[str, Any]:
    """Warden's enterprise application in the sandbox, and the Graph permission to read it."""
    arm.apps.add_service_principal(
        "Warden", ["Warden.Responder", "Warden.Operator"], object_id=WARDEN_SP
    )
    client = arm.clients[arm.client_id.lower()]
    client.graph_roles = (*client.graph_roles, "Directory.Read.All")
    return {"service_principal_id": WARDEN_SP, "cache_seconds": 0}


async def test_roles_group_non_member_denied_member_allowed_grant_recorded(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A person outside the responder group is told the role and the group to join; once a
    member, the same click works and the triage record keeps the group that allowed it."""
    arm.apps.add_group("SOC Responders", object_id=RESPONDERS)
    roles = {"responder_groups": [RESPONDERS], "cache_seconds": 0}
    desk = await open_desk(start_warden, arm, roles=roles)
    refused = await desk.click(CardVerb.ASSIGN_ME)
    assert "Only people with Warden's Responder role" in _texts(refused)
    assert "add you to group SOC Responders" in _texts(refused)
    assert not await desk.triage_jobs()
    arm.set_member_groups(PERSON, [RESPONDERS])
    await desk.click(CardVerb.ASSIGN_ME)
    await desk.settled()
    assert desk.properties()["owner"]["objectId"] == PERSON
    action = await triage_store.latest(desk.store, desk.key)
    assert action is not None and action.actor.allowed_by is not None
    assert action.actor.allowed_by.kind is SourceKind.GROUP
    assert (action.actor.allowed_by.id, action.actor.allowed_by.name) == (
        RESPONDERS,
        "SOC Responders",
    )


async def test_roles_app_role_through_group_allows_triage(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """An app role assigned to a group the person is in grants the role, named with the group."""
    roles = {"responder_app_roles": ["Warden.Responder"], **_app_roles(arm)}
    team = arm.apps.add_group("Night Shift")
    arm.apps.assign(team, WARDEN_SP, "Warden.Responder")
    desk = await open_desk(start_warden, arm, roles=roles)
    refused = await desk.click(CardVerb.SEVERITY, {"severity": "Low"})
    assert "assign you app role Warden.Responder" in _texts(refused)
    arm.set_member_groups(PERSON, [team])
    await desk.click(CardVerb.SEVERITY, {"severity": "Low"})
    await desk.settled()
    assert desk.properties()["severity"] == "Low"
    action = await triage_store.latest(desk.store, desk.key)
    assert action is not None and action.actor.allowed_by is not None
    assert action.actor.allowed_by.record() == {
        "role": "responder",
        "source": "app_role",
        "id": "Warden.Responder",
        "via": "Night Shift",
    }


async def test_roles_operator_command_denied_card_then_whoami_shows_sources(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """``subscribe incidents`` without the operator role answers a denial card naming the
    role; ``whoami`` lists each role with its source, and how to get the missing one."""
    roles = {"operator_groups": [OPERATORS], "responder_app_roles": ["Warden.Responder"]}
    roles |= _app_roles(arm)
    arm.apps.add_group("Warden Operators", object_id=OPERATORS)
    arm.apps.assign(PERSON, WARDEN_SP, "Warden.Responder")
    warden = await start_warden(**connected_settings(arm, roles=roles))
    conversation = channel_id("soc")
    await warden.install(conversation)
    denied = await warden.say(conversation, "subscribe incidents")
    assert "You need Warden's Operator role" in _texts(denied)
    assert "add you to group Warden Operators" in _texts(denied)
    mine = _texts(await warden.say(conversation, "whoami"))
    assert "✓ Responder" in mine and "From: app role Warden.Responder" in mine
    assert "✗ Operator" in mine
    assert "✓ Reviewer" in mine and "anyone: no group or app role is mapped" in mine
    arm.set_member_groups(PERSON, [OPERATORS])
    subscribed = await warden.say(conversation, "subscribe incidents")
    assert "Subscribed to incidents" in _texts(subscribed)


async def test_roles_graph_down_fails_closed(start_warden: WardenFactory, arm: ArmSandbox) -> None:
    """When Graph cannot answer, a mapped role is refused (fail closed) with a plain sentence."""
    desk = await open_desk(start_warden, arm, responder_group_ids=RESPONDERS)
    arm.set_down(True, service="graph")
    refused = await desk.click(CardVerb.SEVERITY, {"severity": "Low"})
    assert "could not check your roles just now" in _texts(refused)
    assert desk.properties()["severity"] == "High"


async def test_whoami_sandbox_without_roles_everyone_has_every_role(
    start_warden: WardenFactory,
) -> None:
    """In sandbox mode with no role mapped, whoami says everyone has every role."""
    warden = await start_warden()
    conversation = channel_id("soc")
    await warden.install(conversation)
    mine = _texts(await warden.say(conversation, "whoami"))
    assert "Sandbox mode: no roles are configured, so everyone has every role." in mine
    assert "✗" not in mine
