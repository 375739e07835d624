"""The evidence owner's card in their personal chat with Warden.

The real app asks for evidence in a channel; Graph is the Graph sandbox (users from the ARM
sandbox's directory, an app catalog holding Warden's app, personal installs and their chats)
and Teams is the connector sandbox, which records every post by conversation id. The owner
then hands in from the personal chat, as Teams would deliver that click.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app import STORE, WORKER
from bot.evidence import card_job, quarter
from cards.verbs import CardVerb
from core.catalog import load_catalog
from core.evidence import RequestSource, RequestStatus, draft_for
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store import outbox
from core.store.evidence_cards import EVIDENCE_CARD_JOB, CardRole, OwnerWay
from core.store.store import Store
from sandbox.arm import ArmSandbox
from sandbox.connector_faults import Fault
from sandbox.graph import Fault as GraphFault
from sandbox.graph import GraphSandbox, run_graph_sandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.test_evidence_chat import button_data, text_of
from tests.integration.triage_support import connected_settings
from tests.support import TENANT, channel_id, message_activity

REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
CATALOG = f"""\
requirements:
  - id: ISO-A.5.15
    title: Access reviews of privileged roles
    guidance: Show the latest quarterly access review and its sign-off.
    evidence: [attestation]
    owner: olivia@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 30
  - id: ISO-A.8.13
    title: Backups are tested
    guidance: A restore test report.
    evidence: [attestation]
    owner: olivia@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 14
"""
OWNER = {
    "id": "29:olivia",
    "name": "Olivia Owner",
    "aadObjectId": "0a0a0a0a-0000-4000-8000-0000000000a1",
}
ASKER = {
    "id": "29:adele",
    "name": "Adele Vance",
    "aadObjectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
}
RITA = {
    "id": "29:rita",
    "name": "Rita Reviewer",
    "aadObjectId": "0b0b0b0b-0000-4000-8000-0000000000b1",
}
CHANNEL = channel_id("compliance")
APP_ID = "warden-bot"
"""The bot's app id: the tests' Teams activities address the bot as ``28:warden-bot``."""
CHAT = f"19:{OWNER['aadObjectId']}_{APP_ID}@unq.gbl.spaces"
GRAPH_ROLES = [
    "GroupMember.Read.All",
    "User.Read.All",
    "AppCatalog.Read.All",
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
]


class Desk:
    """Warden in the compliance channel, Graph and Teams behind it."""

    def __init__(self, warden: Warden, graph: GraphSandbox) -> None:
        self.warden, self.graph = warden, graph

    @property
    def store(self) -> Store:
        return self.warden.client.app[STORE]

    async def say(self, text: str) -> dict[str, Any]:
        """Adele @mentions Warden in the channel; returns the card it replied with."""
        activity = message_activity(self.warden.connector.url, CHANNEL, text)
        activity["from"] = ASKER
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status in (200, 201), await response.text()
        replies = [
            r.body
            for r in self.warden.connector.posts(successful=True)
            if r.body.get("replyToId") == activity["id"]
        ]
        assert replies, "the bot did not answer"
        await self.settled()
        content: dict[str, Any] = replies[-1]["attachments"][0]["content"]
        return content

    async def settled(self) -> None:
        async def idle() -> bool:
            jobs = await outbox.list_jobs(self.store, outbox.UNFINISHED)
            return not [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]

        await self.warden.client.app[WORKER].wait_until(idle)

    def cards(self, conversation: str, heading: str) -> list[dict[str, Any]]:
        """Cards posted (not replies) or updated in ``conversation`` with ``heading``."""
        connector = self.warden.connector
        return [
            r.body["attachments"][0]["content"]
            for r in connector.posts(conversation, successful=True)
            + connector.updates(conversation, successful=True)
            if r.body.get("attachments")
            and heading in str(r.body["attachments"][0]["content"])
            and not r.body.get("replyToId")
        ]

    def owner_posts(self, conversation: str) -> list[Any]:
        """New owner cards posted in ``conversation``."""
        return [
            r
            for r in self.warden.connector.posts(conversation, successful=True)
            if "Evidence requested: " in str(r.body) and not r.body.get("replyToId")
        ]

    def installs(self) -> list[int | None]:
        """The statuses Graph answered to Warden's personal installs."""
        return [c.status for c in self.graph.calls("user_installedApps_Create")]

    async def hand_in(
        self, user: dict[str, str], card: dict[str, Any], conversation: str = CHAT
    ) -> dict[str, Any]:
        """``user`` submits an attestation on ``card`` in their personal chat with Warden."""
        data = {
            **button_data(card, CardVerb.EVIDENCE_SUBMIT.value),
            "kind": "attestation",
            "attestation": "All 14 privileged assignments reviewed on 2026-10-02.",
        }
        return await self.click(user, CardVerb.EVIDENCE_SUBMIT, data, conversation)

    async def click(
        self, user: dict[str, str], verb: CardVerb, data: dict[str, Any], conversation: str
    ) -> dict[str, Any]:
        """``user`` clicks ``verb`` with ``data`` on a card in ``conversation``."""
        activity = {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "id": f"f:{uuid.uuid4().hex}",
            "serviceUrl": self.warden.connector.url,
            "channelId": "msteams",
            "from": user,
            "recipient": {"id": f"28:{APP_ID}", "name": "Warden"},
            "conversation": {
                "id": conversation,
                "conversationType": "personal",
                "tenantId": TENANT,
            },
            "channelData": {"tenant": {"id": TENANT}},
            "replyToId": "1700000000000",
            "value": {
                "action": {
                    "type": "Action.Execute",
                    "verb": verb.value,
                    "data": data,
                }
            },
        }
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        await self.settled()
        value: dict[str, Any] = body["value"]
        return value


@pytest.fixture
async def graph(arm: ArmSandbox) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox, Warden's app in the catalog, Olivia in the directory."""
    arm.add_user("Olivia Owner", "olivia@contoso.com", object_id=OWNER["aadObjectId"])
    arm.set_member_groups(ASKER["aadObjectId"], [REVIEWERS])
    arm.set_member_groups(RITA["aadObjectId"], [REVIEWERS])
    async with run_graph_sandbox(arm) as served:
        served.teamwork.publish(APP_ID)
        yield served


@pytest.fixture
async def desk(
    start_warden: WardenFactory, arm: ArmSandbox, graph: GraphSandbox, tmp_path: Path
) -> Desk:
    """Warden connected to Graph with the roles personal chats need, in the channel."""
    return await open_desk(start_warden, arm, graph, tmp_path, CATALOG)


async def open_desk(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    graph: GraphSandbox,
    tmp_path: Path,
    catalog: str,
    roles: Sequence[str] = (),
) -> Desk:
    """Warden with ``catalog``, connected to Graph with the roles personal chats need (and
    ``roles``), installed in the channel."""
    path = tmp_path / "requirements.yaml"
    path.write_text(catalog, encoding="utf-8")
    app = arm.register_client(str(uuid.uuid4()), graph_roles=[*GRAPH_ROLES, *roles])
    settings = connected_settings(
        arm,
        requirements_file=path,
        graph_endpoint=graph.graph_url,
        azure_client_id=app.client_id,
        azure_client_secret=app.secret,
        responder_cache_seconds=0,
    )
    warden = await start_warden(**settings)
    await warden.install(CHANNEL)
    return Desk(warden, graph)


async def only_request(desk: Desk, requirement: str = "ISO-A.5.15") -> Any:
    found = [
        r for r in await evidence_store.list_requests(desk.store) if r.requirement_id == requirement
    ]
    assert len(found) == 1
    return found[0]


async def test_request_from_channel_installs_and_posts_owner_card_in_personal_chat(
    desk: Desk,
) -> None:
    """Warden is installed for the owner and the owner card lands in their personal chat;
    their hand-in there brings the reviewers' card to the channel, not to the chat."""
    reply = await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    assert "Evidence requested" in text_of(reply)
    assert desk.installs() == [201]
    (installed,) = desk.graph.teamwork.installed_for(OWNER["aadObjectId"])
    assert installed.chat_id == CHAT
    assert len(desk.owner_posts(CHAT)) == 1
    assert desk.owner_posts(CHANNEL) == []
    request = await only_request(desk)
    route = await cards_store.owner_route(desk.store, request.id)
    assert route is not None and route.way is OwnerWay.PERSONAL and route.home == CHANNEL

    answered = await desk.hand_in(OWNER, desk.cards(CHAT, "Evidence requested: ")[-1])
    assert "Waiting for review" in text_of(answered)
    assert (await only_request(desk)).status is RequestStatus.SUBMITTED
    assert desk.cards(CHANNEL, "Evidence to review: "), "no reviewers' card in the channel"
    assert desk.cards(CHAT, "Evidence to review: ") == []
    assert desk.owner_posts(CHANNEL) == []


async def test_second_request_for_same_owner_installs_nothing_again(desk: Desk) -> None:
    """A second request for the same owner reuses the chat: no second install."""
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    await desk.say(f"request evidence ISO-A.8.13 from {OWNER['aadObjectId']}")
    assert desk.installs() == [201]
    assert len(desk.graph.teamwork.installed_for(OWNER["aadObjectId"])) == 1
    assert len(desk.owner_posts(CHAT)) == 2
    assert desk.owner_posts(CHANNEL) == []


async def test_install_blocked_posts_owner_card_in_channel_mentioning_owner(
    desk: Desk,
) -> None:
    """The tenant blocks user installs (403): the owner card goes to the channel, with an
    @mention of the owner by object id, and the way it went is recorded."""
    desk.graph.teamwork.block_installs = True
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    assert desk.installs() == [403]
    assert desk.graph.teamwork.installed_for(OWNER["aadObjectId"]) == []
    assert desk.owner_posts(CHAT) == []
    (card,) = desk.cards(CHANNEL, "Evidence requested: ")
    mention = card["msteams"]["entities"][0]
    assert mention["type"] == "mention"
    assert mention["mentioned"]["id"] == OWNER["aadObjectId"]
    assert mention["text"] == f"<at>{OWNER['name']}</at>"
    assert mention["text"] in text_of(card)
    route = await cards_store.owner_route(desk.store, (await only_request(desk)).id)
    assert route is not None and route.way is OwnerWay.CHANNEL and route.chat is None


async def test_owner_by_upn_stored_as_object_id_and_can_submit(desk: Desk) -> None:
    """``from olivia@contoso.com`` stores Olivia's object id, so her click is hers."""
    await desk.say("request evidence ISO-A.5.15 from Olivia@contoso.com")
    request = await only_request(desk)
    assert request.owner == OWNER["aadObjectId"]
    names = await cards_store.names_of(desk.store, [request.owner])
    assert names[OWNER["aadObjectId"]] == "Olivia Owner"
    (card,) = desk.cards(CHAT, "Evidence requested: ")
    await desk.hand_in(OWNER, card)
    assert (await only_request(desk)).status is RequestStatus.SUBMITTED


async def test_owner_click_under_bot_framework_chat_id_is_hers(desk: Desk) -> None:
    """Teams posts to Graph's chat id but clicks come back under the Bot Framework's `a:…`
    id of the same chat: the owner is recognised there; anyone else's personal chat is not."""
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    (card,) = desk.cards(CHAT, "Evidence requested: ")
    refused = await desk.hand_in(RITA, card, conversation="a:1rita-personal-chat")
    assert (await only_request(desk)).status is RequestStatus.OPEN
    assert "Evidence requested" not in str(refused)
    await desk.hand_in(OWNER, card, conversation="a:1olivia-personal-chat")
    assert (await only_request(desk)).status is RequestStatus.SUBMITTED


async def test_unknown_upn_refused_and_nothing_requested(desk: Desk) -> None:
    """A UPN the directory does not know is refused in chat; no request, no card."""
    reply = await desk.say("request evidence ISO-A.5.15 from nobody@contoso.com")
    assert "no such user in the directory" in text_of(reply)
    assert await evidence_store.list_requests(desk.store) == []
    assert desk.installs() == []


async def test_catalog_owner_upn_resolved_at_delivery(desk: Desk) -> None:
    """A request opened with the catalog's owner UPN (as the poller and campaigns do) is
    stored by object id once its card is delivered, in the owner's personal chat."""
    catalog = desk.warden.settings.requirements_file
    assert catalog is not None
    requirement = load_catalog(catalog).get("ISO-A.8.13")
    assert requirement is not None
    today = datetime.now(UTC).date()
    draft = draft_for(
        requirement,
        source=RequestSource.CAMPAIGN,
        period=quarter(today),
        requested_by="operator@contoso.com",
        today=today,
    )
    job = card_job(draft.dedupe_key(), CardRole.OWNER, CHANNEL, by_key=True)
    assert job.payload["personal"] is True
    request, created = await evidence_store.open_request(desk.store, draft, jobs=[job])
    assert created and request.owner == "olivia@contoso.com"
    desk.warden.client.app[WORKER].wake()
    await desk.settled()
    assert (await only_request(desk, "ISO-A.8.13")).owner == OWNER["aadObjectId"]
    assert len(desk.owner_posts(CHAT)) == 1


async def test_retried_delivery_after_failed_post_installs_and_posts_once(desk: Desk) -> None:
    """The post to the personal chat fails after the install (the connector is down for it):
    the retried job installs nothing again and the owner card is posted once."""
    desk.warden.connector.add_fault(
        Fault(status=500, method="POST", path="unq.gbl.spaces", times=4)
    )
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    failed = [r for r in desk.warden.connector.posts(CHAT) if r.status == 500]
    assert failed, "the fault never fired"
    (job,) = [
        j
        for j in await outbox.list_jobs(desk.store, outbox.DONE)
        if j.kind == EVIDENCE_CARD_JOB and j.payload.get("personal")
    ]
    assert job.attempts > 1, "the job was not run again"
    assert desk.installs() == [201]
    assert len(desk.owner_posts(CHAT)) == 1
    assert desk.owner_posts(CHANNEL) == []


async def test_graph_failing_on_install_posts_owner_card_in_channel(desk: Desk) -> None:
    """Graph keeps answering 503 to the install: after its retries the owner card goes to
    the channel rather than waiting, and the install is not tried again for that request."""
    desk.graph.add_fault(
        GraphFault(status=503, method="POST", path="/teamwork/installedApps", times=None)
    )
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    failures = desk.installs()
    assert failures and set(failures) == {503}
    assert len(desk.owner_posts(CHANNEL)) == 1
    assert desk.owner_posts(CHAT) == []
    route = await cards_store.owner_route(desk.store, (await only_request(desk)).id)
    assert route is not None and route.way is OwnerWay.CHANNEL
