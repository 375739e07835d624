"""Evidence requests in a Teams channel: the command, the owner's card, the reviewers' card.

The real app (botbuilder, outbox, store) answers activities shaped like Teams' and posts
its cards to the connector sandbox; no Graph is configured, so anyone may review (as in
the sandbox), while the domain's rules (owner only, separation of duties, N of M, stale
cards) still hold.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from app import STORE, WORKER
from cards.verbs import CardVerb
from core.audit_chain import AuditAction, verify
from core.evidence import RequestStatus
from core.store import evidence as evidence_store
from core.store import evidence_audit, outbox
from core.store.evidence_cards import EVIDENCE_CARD_JOB
from tests.integration.conftest import Warden, WardenFactory
from tests.support import channel_id, invoke_activity, message_activity

CATALOG = """\
requirements:
  - id: ISO-A.5.15
    title: Access reviews of privileged roles
    guidance: Show the latest quarterly access review and its sign-off.
    evidence: [link, attestation]
    owner: owner@contoso.com
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    approvals: 2
    due_days: 30
  - id: ISO-A.8.13
    title: Backups are tested
    guidance: A restore test report.
    evidence: [attestation]
    owner: owner@contoso.com
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    due_days: 14
"""

OWNER = {
    "id": "29:olivia",
    "name": "Olivia Owner",
    "aadObjectId": "0a0a0a0a-0000-4000-8000-00000000000a",
}
RITA = {
    "id": "29:rita",
    "name": "Rita Reviewer",
    "aadObjectId": "0b0b0b0b-0000-4000-8000-00000000000b",
}
SAM = {"id": "29:sam", "name": "Sam Second", "aadObjectId": "0c0c0c0c-0000-4000-8000-00000000000c"}
ASKER = {
    "id": "29:adele",
    "name": "Adele Vance",
    "aadObjectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
}
ATTESTATION = "We reviewed all 14 privileged role assignments on 2026-10-02.\nTwo were removed."


class Room:
    """A channel where evidence is requested, handed in and reviewed, person by person."""

    def __init__(self, warden: Warden, conversation: str) -> None:
        self.warden, self.conversation = warden, conversation

    async def say(self, text: str, user: dict[str, str] = ASKER) -> dict[str, Any]:
        """``user`` @mentions Warden with ``text``; returns the card it replied with."""
        activity = message_activity(self.warden.connector.url, self.conversation, text)
        activity["from"] = user
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status in (200, 201), await response.text()
        replies = [
            r.body
            for r in self.warden.connector.posts(successful=True)
            if r.body.get("replyToId") == activity["id"]
        ]
        assert replies, "the bot did not answer"
        content: dict[str, Any] = replies[-1]["attachments"][0]["content"]
        await self.settled()
        return content

    def card(self, heading: str) -> dict[str, Any]:
        """The newest posted or updated card whose first heading starts with ``heading``."""
        found: list[dict[str, Any]] = [
            r.body["attachments"][0]["content"]
            for r in self.warden.connector.posts(self.conversation, successful=True)
            + self.warden.connector.updates(self.conversation, successful=True)
            if r.body.get("attachments")
            and heading in str(r.body["attachments"][0]["content"])
            and not r.body.get("replyToId")
        ]
        assert found, f"no card {heading!r} in the channel"
        return found[-1]

    def owner_card(self) -> dict[str, Any]:
        return self.card("Evidence requested: ")

    def reviewers_card(self) -> dict[str, Any]:
        return self.card("Evidence to review: ")

    async def click(
        self,
        verb: CardVerb,
        user: dict[str, str],
        inputs: dict[str, Any] | None = None,
        *,
        card: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``user`` clicks ``verb`` on ``card`` (default: the newest card offering it)."""
        shown = card or (
            self.owner_card() if verb is CardVerb.EVIDENCE_SUBMIT else self.reviewers_card()
        )
        data = {**button_data(shown, verb.value), **(inputs or {})}
        activity = invoke_activity(self.warden.connector.url, self.conversation, verb.value, data)
        activity["from"] = user
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        assert body["statusCode"] == 200
        await self.settled()
        value: dict[str, Any] = body["value"]
        return value

    async def settled(self) -> None:
        store = self.warden.client.app[STORE]

        async def idle() -> bool:  # audit.mirror jobs wait for SharePoint, not configured here
            jobs = await outbox.list_jobs(store, outbox.UNFINISHED)
            return not [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]

        await self.warden.client.app[WORKER].wait_until(idle)


def button_data(card: Any, verb: str) -> dict[str, Any]:
    """The data of the button with ``verb`` anywhere in ``card`` (show cards included)."""
    if isinstance(card, dict):
        if card.get("verb") == verb:
            return dict(card["data"])
        values = list(card.values())
    elif isinstance(card, list):
        values = card
    else:
        return {}
    for value in values:
        found = button_data(value, verb)
        if found:
            return found
    return {}


def text_of(card: dict[str, Any]) -> str:
    """Every text on the card, joined (text blocks, runs, facts)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value"):
                if isinstance(node.get(key), str):
                    parts.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return "\n".join(parts)


@pytest.fixture
async def room(tmp_path: Path, start_warden: WardenFactory) -> Room:
    """Warden with a two-requirement catalog, installed in a channel."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    warden = await start_warden(requirements_file=catalog)
    conversation = channel_id("compliance")
    await warden.install(conversation)
    return Room(warden, conversation)


async def requested(room: Room, requirement: str = "ISO-A.5.15") -> dict[str, Any]:
    return await room.say(f"request evidence {requirement} from {OWNER['aadObjectId']}")


async def test_request_evidence_posts_owner_card_mentioning_the_owner(room: Room) -> None:
    """The command opens a request and the owner's card mentions the owner."""
    reply = await requested(room)
    assert "Evidence requested" in text_of(reply)
    card = room.owner_card()
    mention = card["msteams"]["entities"][0]
    assert mention["type"] == "mention"
    assert mention["mentioned"]["id"] == OWNER["aadObjectId"]
    assert mention["text"] in text_of(card)
    assert "Access reviews of privileged roles" in text_of(card)
    assert "Show the latest quarterly access review" in text_of(card)
    assert button_data(card, CardVerb.EVIDENCE_SUBMIT.value)["version"] == 1


async def test_request_evidence_from_a_mention_asks_that_person(room: Room) -> None:
    """``from @Olivia`` (a Teams mention entity) asks the mentioned person; a mention Teams
    gave without an Entra object id is refused with what to type instead."""
    activity = message_activity(
        room.warden.connector.url,
        room.conversation,
        "request evidence ISO-A.5.15 from <at>Olivia Owner</at>",
    )
    activity["from"] = ASKER
    activity["entities"].append(
        {"type": "mention", "mentioned": OWNER, "text": "<at>Olivia Owner</at>"}
    )
    response = await room.warden.client.post("/api/messages", json=activity)
    assert response.status in (200, 201)
    await room.settled()
    card = room.owner_card()
    assert card["msteams"]["entities"][0]["mentioned"]["id"] == OWNER["aadObjectId"]
    assert OWNER["name"] in text_of(card)
    nameless = {"id": "29:someone", "name": "Someone"}
    activity = message_activity(
        room.warden.connector.url,
        room.conversation,
        "request evidence ISO-A.8.13 from <at>Someone</at>",
    )
    activity["entities"].append({"type": "mention", "mentioned": nameless, "text": "x"})
    await room.warden.client.post("/api/messages", json=activity)
    refused = [
        r.body for r in room.warden.connector.posts() if r.body.get("replyToId") == activity["id"]
    ]
    assert "type their UPN" in str(refused[-1])


async def test_request_evidence_from_a_teams_mention_looks_up_who_it_is(room: Room) -> None:
    """Teams' mention entities name the person by their Teams id only: Warden asks the Bot
    Connector who that member is (GetConversationMember) and asks them by Entra object id."""
    member = room.warden.connector.members[0]
    mentioned = {"id": member["id"], "name": member["name"]}  # as Teams sends it
    activity = message_activity(
        room.warden.connector.url,
        room.conversation,
        f"request evidence ISO-A.5.15 from <at>{member['name']}</at>",
    )
    activity["from"] = ASKER
    activity["entities"].append(
        {"type": "mention", "mentioned": mentioned, "text": f"<at>{member['name']}</at>"}
    )
    response = await room.warden.client.post("/api/messages", json=activity)
    assert response.status in (200, 201)
    await room.settled()
    card = room.owner_card()
    assert card["msteams"]["entities"][0]["mentioned"]["id"] == member["aadObjectId"]
    assert member["name"] in text_of(card)
    looked_up = [
        r for r in room.warden.connector.requests if r.path.endswith(f"/members/{member['id']}")
    ]
    assert [r.status for r in looked_up] == [200]


async def test_request_evidence_twice_while_open_says_already_open(room: Room) -> None:
    """A second identical request opens nothing and says the first is open."""
    await requested(room)
    again = await requested(room)
    assert "already open" in text_of(again)
    assert len(await evidence_store.list_requests(room.warden.client.app[STORE])) == 1
    owner_posts = [
        r
        for r in room.warden.connector.posts(room.conversation)
        if "Evidence requested: " in str(r.body) and not r.body.get("replyToId")
    ]
    assert len(owner_posts) == 1


async def test_request_evidence_unknown_requirement_lists_close_ids(room: Room) -> None:
    """An unknown requirement id is refused with the ids that come close."""
    reply = await room.say(f"request evidence ISO-A.5.16 from {OWNER['aadObjectId']}")
    text = text_of(reply)
    assert "Unknown requirement" in text
    assert "ISO-A.5.15" in text


async def test_request_evidence_due_in_the_past_is_refused(room: Room) -> None:
    """A due date that has passed opens nothing."""
    reply = await room.say(
        f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']} due 2020-01-01"
    )
    assert "has passed" in text_of(reply)
    assert not await evidence_store.list_requests(room.warden.client.app[STORE])


async def test_evidence_two_approvals_with_separation_of_duties(room: Room) -> None:
    """Attestation → SHA-256 shown; owner cannot approve; 1 of 2; no double vote; approved."""
    await requested(room)
    submitted = await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "attestation", "attestation": ATTESTATION}
    )
    assert "Waiting for review" in text_of(submitted)
    digest = hashlib.sha256(ATTESTATION.encode("utf-8")).hexdigest()
    review = room.reviewers_card()
    assert digest in text_of(review)
    assert "Approvals: 0 of 2" in text_of(review)

    refused = await room.click(CardVerb.EVIDENCE_APPROVE, OWNER)
    assert "cannot approve evidence that you own" in text_of(refused)

    first = await room.click(CardVerb.EVIDENCE_APPROVE, RITA)
    assert "Approvals: 1 of 2 (Rita Reviewer)" in text_of(first)
    twice = await room.click(CardVerb.EVIDENCE_APPROVE, RITA, card=first)
    assert "already approved" in text_of(twice)

    done = await room.click(CardVerb.EVIDENCE_APPROVE, SAM, card=first)
    assert "Approved by Rita Reviewer, Sam Second" in text_of(done)
    assert "Approved by Rita Reviewer, Sam Second" in text_of(room.owner_card())
    assert "Approved by Rita Reviewer, Sam Second" in text_of(room.reviewers_card())

    late = await room.click(CardVerb.EVIDENCE_REJECT, RITA, {"reason": "late"}, card=first)
    assert "Approved by Rita Reviewer, Sam Second" in text_of(late)
    assert "changed after your card was drawn: Sam Second changed it at" in text_of(late)
    assert "and it is approved" in text_of(late)

    store = room.warden.client.app[STORE]
    entries = await evidence_audit.audit_entries(store)
    assert verify(entries).ok
    approvals = [entry for entry in entries if entry.action is AuditAction.APPROVED]
    allowed = {"role": "reviewer", "source": "sandbox"}  # who was allowed to approve, and why
    assert [entry.details.get("allowedBy") for entry in approvals] == [allowed, allowed]


async def test_evidence_only_the_owner_submits(room: Room) -> None:
    """Someone else's submission is refused on the card."""
    await requested(room)
    refused = await room.click(
        CardVerb.EVIDENCE_SUBMIT, RITA, {"kind": "attestation", "attestation": ATTESTATION}
    )
    assert "Only the owner" in text_of(refused)
    assert "Waiting for evidence" in text_of(refused)


async def test_evidence_reject_needs_a_reason(room: Room) -> None:
    """An empty reason changes nothing; with one the request is rejected on both cards."""
    await requested(room, "ISO-A.8.13")
    await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "attestation", "attestation": "Restored fine."}
    )
    empty = await room.click(CardVerb.EVIDENCE_REJECT, RITA, {"reason": "  "})
    assert "a rejection needs a reason" in text_of(empty)
    assert "Waiting for review" in text_of(empty)
    rejected = await room.click(CardVerb.EVIDENCE_REJECT, RITA, {"reason": "No report attached"})
    assert "Rejected by Rita Reviewer: No report attached" in text_of(rejected)
    assert "Rejected by Rita Reviewer" in text_of(room.owner_card())


async def test_evidence_changes_requested_then_version_two_resets_approvals(room: Room) -> None:
    """Changes go back to the owner, who resubmits as version 2; approvals start over."""
    await requested(room)
    await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "attestation", "attestation": ATTESTATION}
    )
    await room.click(CardVerb.EVIDENCE_APPROVE, RITA)
    back = await room.click(CardVerb.EVIDENCE_REQUEST_CHANGES, SAM, {"comment": "Add the sign-off"})
    assert "Changes requested by Sam Second: Add the sign-off" in text_of(back)
    owner = room.owner_card()
    assert "Changes requested by Sam Second: Add the sign-off" in text_of(owner)
    link = "https://contoso.sharepoint.com/sites/grc/review-q4.pdf"
    stale = dict(button_data(owner, CardVerb.EVIDENCE_SUBMIT.value))
    again = await room.click(CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "link", "link": link})
    assert "Waiting for review" in text_of(again)
    review = room.reviewers_card()
    assert "Approvals: 0 of 2" in text_of(review)
    assert link in text_of(review)
    assert "Version" in text_of(review) and "2" in [
        f["value"] for f in _facts(review) if f["title"] == "Version"
    ]

    old = {**stale, "kind": "link", "link": link}
    activity_card = {"actions": [{"verb": CardVerb.EVIDENCE_SUBMIT.value, "data": old}]}
    refreshed = await room.click(CardVerb.EVIDENCE_SUBMIT, OWNER, card=activity_card)
    assert "changed after your card was drawn" in text_of(refreshed)
    store = room.warden.client.app[STORE]
    requests = await evidence_store.list_requests(store)
    assert [r.status for r in requests] == [RequestStatus.SUBMITTED]
    assert requests[0].submission == 2
    assert verify(await evidence_audit.audit_entries(store)).ok


async def test_evidence_link_must_be_https(room: Room) -> None:
    """A plain-http link is refused on the owner's card."""
    await requested(room)
    refused = await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "link", "link": "http://example.com/x"}
    )
    assert "https://" in text_of(refused)
    assert "Waiting for evidence" in text_of(refused)


async def test_evidence_link_outside_allowed_hosts_refused_on_the_card(
    tmp_path: Path, start_warden: WardenFactory
) -> None:
    """With WARDEN_EVIDENCE_LINK_HOSTS set, a link elsewhere is refused on the owner's card
    at once, naming the hosts allowed; nothing is handed in. A link on them is accepted."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    warden = await start_warden(requirements_file=catalog, evidence_link_hosts="contoso.com")
    room = Room(warden, channel_id("compliance"))
    await warden.install(room.conversation)
    await requested(room)
    refused = await room.click(
        CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "link", "link": "https://files.example.org/r"}
    )
    assert "files.example.org are not accepted" in text_of(refused)
    assert "contoso.com" in text_of(refused)
    assert "Waiting for evidence" in text_of(refused)
    accepted = await room.click(
        CardVerb.EVIDENCE_SUBMIT,
        OWNER,
        {"kind": "link", "link": "https://docs.contoso.com/grc/review.pdf"},
    )
    assert "Waiting for review" in text_of(accepted)


async def test_review_channel_gets_the_reviewers_card_the_owner_card_stays(
    tmp_path: Path, start_warden: WardenFactory
) -> None:
    """A requirement with a review channel: asked for in the compliance channel, the owner's
    card stays there while the reviewers' card goes to the review channel; approving there
    redraws the owner's card where it is, never posting one in the review channel."""
    review = channel_id("grc-review")
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(
        CATALOG.replace(
            "    approvals: 2\n", f'    approvals: 2\n    review_channel: "{review}"\n', 1
        ),
        encoding="utf-8",
    )
    warden = await start_warden(requirements_file=catalog)
    room = Room(warden, channel_id("compliance"))
    reviewers = Room(warden, review)
    await warden.install(room.conversation)
    await warden.install(review)
    await requested(room)
    await room.click(CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "attestation", "attestation": "ok"})
    assert "Evidence to review" not in str(
        [r.body for r in warden.connector.posts(room.conversation, successful=True)]
    )
    await reviewers.click(CardVerb.EVIDENCE_APPROVE, RITA)
    answer = await reviewers.click(CardVerb.EVIDENCE_APPROVE, SAM)
    assert "Approved" in text_of(answer)
    assert "Approved" in text_of(room.owner_card())
    in_review = [r.body for r in warden.connector.posts(review, successful=True)]
    assert not any("Evidence requested: " in str(body) for body in in_review)


def _facts(card: Any) -> list[dict[str, str]]:
    if isinstance(card, dict):
        found = list(card["facts"]) if card.get("type") == "FactSet" else []
        return found + [f for v in card.values() for f in _facts(v)]
    if isinstance(card, list):
        return [f for v in card for f in _facts(v)]
    return []
