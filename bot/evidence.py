"""Evidence requests in Teams: the ``request evidence`` command and the evidence card buttons.

Mirrors the triage desk (:mod:`bot.triage`): each action is checked in order and the first
refusal answers with the card as it stands and a sentence saying why (nothing changes). A
click must come from a conversation where the request's card was posted (action data names a
request, it never grants access to one); the person must be known (their Entra object id
comes from the authenticated activity); a reviewer verb needs a member of the requirement's
reviewer groups (asked of Graph; without Graph, as in the sandbox, anyone may). The rules of
the workflow itself (only the owner submits, separation of duties, N of M, stale cards) are
the domain's (:mod:`core.evidence`): its ``user_message`` becomes the card's notice.

Accepted changes are written with the ``evidence.card`` outbox jobs that redraw the cards in
the same transaction; the click is answered at once with the redrawn card.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime

from pydantic import BaseModel

from bot.evidence_delivery import People, resource_facts
from bot.reviewers import ReviewerGroups
from bot.roles import RoleGate
from bot.types import Card, CardAction, Message, Refusal, User
from cards.common import error_card
from cards.evidence import owner_card, people_on, requested_card, reviewers_card
from cards.verbs import CardVerb
from core.actions import EvidenceChangesData, EvidenceData, EvidenceRejectData, EvidenceSubmitData
from core.catalog import GUID, UPN, Catalog, EvidenceKind, PrincipalKind, Requirement
from core.errors import (
    DeliveryError,
    EvidenceRefused,
    ResponderCheckUnavailable,
    StaleRequest,
)
from core.evidence import DecisionKind, Evidence, RequestSource, Verdict, draft_for
from core.models import ConversationKind, ConversationRef
from core.roles import Grant, Role, RoleMap
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store.evidence_audit import FollowUp
from core.store.evidence_cards import EVIDENCE_CARD_JOB, CardRole
from core.store.evidence_outcomes import outcome_job
from core.store.posture import attest_job
from core.store.store import Store

log = logging.getLogger(__name__)

EVIDENCE_DATA: dict[CardVerb, type[BaseModel]] = {
    CardVerb.EVIDENCE_SUBMIT: EvidenceSubmitData,
    CardVerb.EVIDENCE_APPROVE: EvidenceData,
    CardVerb.EVIDENCE_REJECT: EvidenceRejectData,
    CardVerb.EVIDENCE_REQUEST_CHANGES: EvidenceChangesData,
}
"""The data contract of each evidence verb (``core.actions``)."""

NOT_HERE = "This conversation has no card for that evidence request."


def quarter(day: date) -> str:
    """The reporting period of ``day``: its year and quarter, e.g. ``2026-Q4``."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def card_job(request_key: str, role: CardRole, conversation_id: str, *, by_key: bool) -> FollowUp:
    """The ``evidence.card`` job that brings one card up to date.

    ``by_key``: ``request_key`` is the dedupe key of a request being opened in the same
    transaction (its id is not known yet); otherwise it is the request id. The owner's card
    of a request being opened (chat, Azure Policy, campaigns) is marked ``personal``: it goes
    to the owner's personal chat when Warden can reach it (``bot.evidence_delivery``).
    """
    payload: dict[str, object] = dict(
        cards_store.card_job_payload(request_key, role, conversation_id)
    )
    if by_key:
        payload["key"] = payload.pop("request")
        if role is CardRole.OWNER:
            payload["personal"] = True
    return FollowUp(
        EVIDENCE_CARD_JOB,
        f"evidence|{request_key}|{conversation_id}",
        payload,
        conversation_id=conversation_id,
    )


class EvidenceDesk:
    """Answers ``request evidence`` and the evidence verbs of the owner's and reviewers' cards."""

    members: Callable[[ConversationRef, str], Awaitable[User | None]] | None = None
    """Who a conversation member is (``TeamsAdapter.member``), set once the adapter exists."""

    link_refusal: Callable[[str], str | None] = staticmethod(lambda _url: None)
    """Why a link may not be handed in (its host is not allowed), None when it may: set from
    ``WARDEN_EVIDENCE_LINK_HOSTS`` so a link Warden will not fetch is refused on the card."""

    people: People | None = None
    """The directory (``graph.people.People``), set when Warden reaches Graph: an owner typed
    as a UPN is then stored by Entra object id, and an unknown UPN is refused."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        reviewers: ReviewerGroups | None = None,
        roles: RoleGate | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        itsm: bool = False,
        attest: bool = False,
    ) -> None:
        """``itsm``: an ITSM system is connected, so a decision that ends a request is
        written there too (an ``itsm.evidence_outcome`` job in the decision's transaction).
        ``attest``: Azure Policy is connected, so the approval of a policy request is
        attested there (a ``policy.attest`` job in the decision's transaction).
        ``roles``: who holds the reviewer role (none given: anyone does); a reviewer also
        needs the requirement's reviewer groups (``reviewers``)."""
        self._store = store
        self._roles = roles or RoleGate(RoleMap())
        self._itsm = itsm
        self._attest = attest
        self._catalog = catalog
        self._reviewers = reviewers
        self._today = today
        self.wake: Callable[[], None] = lambda: None
        """Called once a change is recorded (the outbox worker's ``wake``)."""

    @property
    def catalog(self) -> Catalog:
        """The requirements requests are made for."""
        return self._catalog

    async def aclose(self) -> None:
        """Release the reviewer check's connections."""
        if self._reviewers is not None:
            await self._reviewers.aclose()

    async def command(self, message: Message, values: dict[str, str]) -> list[Card]:
        """``request evidence <requirement> from <person> [due YYYY-MM-DD]``."""
        typed = (values.get("requirement") or "").upper()
        requirement = self._catalog.get(typed)
        if requirement is None:
            return [self._unknown(typed)]
        try:
            owner = await self._owner(message, values.get("person"))
            due = self._due(values.get("due"))
            actor, _grant = await self._actor(message.user, requirement, "request evidence")
        except Refusal as refusal:
            return [error_card("Evidence not requested", str(refusal))]
        draft = draft_for(
            requirement,
            source=RequestSource.CHAT,
            period=quarter(self._today()),
            requested_by=actor,
            today=self._today(),
            owner=owner,
            due=due,
        )
        conversation = message.conversation.conversation_id
        job = card_job(draft.dedupe_key(), CardRole.OWNER, conversation, by_key=True)
        request, created = await evidence_store.open_request(self._store, draft, jobs=[job])
        if created:
            self.wake()
            log.info("evidence request %s opened from chat", request.id)
        names = await cards_store.names_of(self._store, [request.owner, request.requested_by])
        return [requested_card(request, requirement, names, created=created)]

    async def _owner(self, message: Message, typed: str | None) -> str:
        """Who is asked: the person @mentioned (by Entra object id, name remembered), else
        the UPN or object id typed after ``from``."""
        person = _mentioned(message)
        if person is None:
            return await self._resolved(_person(typed))
        if not person.aad_object_id and self.members is not None:
            try:  # Teams names a mentioned person by their Teams id only: ask who that is
                person = await self.members(message.conversation, person.id) or person
            except DeliveryError as exc:
                raise Refusal(
                    "Warden could not look up the person mentioned in Teams just now; try "
                    "again in a minute."
                ) from exc
        if not person.aad_object_id:
            raise Refusal(
                f"Warden cannot tell who @{person.name or 'that'} is in the directory; type "
                "their UPN (name@domain) after `from` instead."
            )
        await cards_store.remember_name(self._store, person.aad_object_id.lower(), person.name)
        return person.aad_object_id.lower()

    async def _resolved(self, owner: str) -> str:
        """The owner's Entra object id for a UPN (name remembered), when the directory is
        reachable; an object id, or any owner without a directory, as typed."""
        if self.people is None or not UPN.fullmatch(owner):
            return owner
        try:
            found = await self.people.user_by_upn(owner)
        except DeliveryError:
            raise Refusal(
                f"Warden could not look {owner} up in the directory just now; nothing was "
                "requested. Try again in a minute."
            ) from None
        if found is None:
            raise Refusal(f"{owner}: no such user in the directory; nothing was requested.")
        await cards_store.remember_name(self._store, found.id.lower(), found.name)
        return found.id.lower()

    async def handle(self, action: CardAction, data: BaseModel) -> Card:
        """Answer an evidence verb with the clicked card redrawn (and a notice if refused)."""
        assert isinstance(data, EvidenceData)
        verb = CardVerb(action.verb)
        role = CardRole.OWNER if verb is CardVerb.EVIDENCE_SUBMIT else CardRole.REVIEWERS
        requirement = await self._shown_here(data.request, action)
        if requirement is None:
            return error_card("Not available here", NOT_HERE)
        try:
            if verb is CardVerb.EVIDENCE_SUBMIT:
                assert isinstance(data, EvidenceSubmitData)
                await self._submit(data, action, requirement)
            else:
                await self._decide(verb, data, action, requirement)
        except StaleRequest as stale:  # named as the card names people
            names = await cards_store.names_of(self._store, [stale.by])
            notice = stale.told(names.get(stale.by.casefold(), stale.by))
            return await self.card(data.request, role, requirement, notice=notice)
        except (Refusal, EvidenceRefused) as refusal:
            notice = refusal.user_message if isinstance(refusal, EvidenceRefused) else str(refusal)
            return await self.card(data.request, role, requirement, notice=notice)
        self.wake()
        return await self.card(data.request, role, requirement)

    async def invalid(self, action: CardAction, problems: list[str]) -> Card | None:
        """The clicked card with what was wrong with its inputs; ``None`` if not shown here."""
        return await self.noticed(action, "Nothing was changed: " + "; ".join(problems))

    async def noticed(self, action: CardAction, notice: str) -> Card | None:
        """The clicked card as it stands with ``notice`` on top; ``None`` if not shown here."""
        request_id = action.data.get("request")
        if not isinstance(request_id, str):
            return None
        requirement = await self._shown_here(request_id, action)
        if requirement is None:
            return None
        verb = CardVerb.parse(action.verb)
        role = CardRole.OWNER if verb is CardVerb.EVIDENCE_SUBMIT else CardRole.REVIEWERS
        return await self.card(request_id, role, requirement, notice=notice)

    async def card(
        self,
        request_id: str,
        role: CardRole,
        requirement: Requirement,
        *,
        notice: str | None = None,
    ) -> Card:
        """The ``role`` card of the request as it stands, with ``notice`` on top."""
        record = await evidence_store.record(self._store, request_id)
        if record is None:
            return error_card("Not available here", NOT_HERE)
        names = await cards_store.names_of(self._store, people_on(record))
        known = await resource_facts(self._store, record.request.resources, self._today())
        draw = owner_card if role is CardRole.OWNER else reviewers_card
        return draw(record, requirement, names, notice=notice, resources=known)

    async def _shown_here(self, request_id: str, action: CardAction) -> Requirement | None:
        """The request's requirement, when a card of the request was posted here, or when
        its owner acts in their personal chat with Warden.

        Teams names a personal chat two ways: Graph's chat id (``19:…@unq.gbl.spaces``, where
        Warden posts the owner's card) and the Bot Framework's (``a:…``, on the clicks that come
        back), so in a personal chat the owner is recognised instead of the conversation id."""
        conversation = action.conversation.conversation_id
        request = await evidence_store.get(self._store, request_id)
        if request is None:
            return None
        personal = action.conversation.kind is ConversationKind.PERSONAL
        clicker = (action.user.aad_object_id or "").lower()
        owners_chat = personal and bool(clicker) and clicker == request.owner.lower()
        if not owners_chat and not await cards_store.shown_in(
            self._store, request_id, conversation
        ):
            log.warning("evidence action refused: the request's card was not posted here")
            return None
        return self._catalog.get(request.requirement_id)

    async def _submit(
        self, data: EvidenceSubmitData, action: CardAction, requirement: Requirement
    ) -> None:
        actor, _grant = await self._actor(action.user, None, "hand in evidence")
        if data.kind == "link":
            refusal = self.link_refusal(data.link or "")
            if refusal is not None:
                raise Refusal(refusal)
            evidence = Evidence.model_validate({"kind": EvidenceKind.LINK, "url": data.link})
        else:
            text = (data.attestation or "").strip()
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            evidence = Evidence.model_validate(
                {"kind": EvidenceKind.ATTESTATION, "text": text, "sha256": digest}
            )
        await evidence_store.submit(
            self._store,
            data.request,
            evidence,
            actor,
            seen=data.version,
            acts_for_owner=await self._for_owner_group(action.user, data.request, requirement),
            accepted=requirement.evidence,
            jobs=self._redraws(data.request, action)
            + evidence_store.filing_jobs(data.request, action.conversation.conversation_id),
        )

    async def _decide(
        self, verb: CardVerb, data: EvidenceData, action: CardAction, requirement: Requirement
    ) -> None:
        actor, grant = await self._actor(action.user, requirement, "decide on evidence")
        if isinstance(data, EvidenceRejectData):
            verdict = Verdict.model_validate({"kind": DecisionKind.REJECT, "comment": data.reason})
        elif isinstance(data, EvidenceChangesData):
            verdict = Verdict.model_validate(
                {"kind": DecisionKind.REQUEST_CHANGES, "comment": data.comment}
            )
        else:
            verdict = Verdict.model_validate({"kind": DecisionKind.APPROVE})
        jobs = [*self._redraws(data.request, action), evidence_store.list_job(data.request)]
        if self._itsm:
            request, seen = data.request, data.version
            ending = await outcome_job(
                self._store, request, verdict, actor, seen=seen, requirement=requirement
            )
            jobs += [ending] if ending is not None else []
        if self._attest:
            attesting = await attest_job(
                self._store,
                data.request,
                verdict,
                actor,
                seen=data.version,
                requirement=requirement,
            )
            jobs += [attesting] if attesting is not None else []
        await evidence_store.decide(
            self._store,
            data.request,
            verdict,
            actor,
            seen=data.version,
            acts_for_owner=await self._for_owner_group(action.user, data.request, requirement),
            jobs=jobs,
            allowed_by=grant.record() if grant is not None else None,
        )
        log.info("evidence %s recorded on request %s", verb.value, data.request)

    async def member_of(self, object_id: str, group_ids: Sequence[str]) -> bool:
        """Whether ``object_id`` is in one of ``group_ids`` (Graph); False without Graph."""
        if self._reviewers is None:
            return False
        return await self._reviewers.is_member(object_id, group_ids)

    async def _for_owner_group(self, user: User, request_id: str, requirement: Requirement) -> bool:
        """True when ``user`` answers for the request's owner: its owner is the requirement's
        owner group and they are a member (so they may hand in, and may not approve)."""
        owner = requirement.owner
        if owner.kind is not PrincipalKind.GROUP or self._reviewers is None:
            return False
        request = await evidence_store.get(self._store, request_id)
        if request is None or not user.aad_object_id or request.owner.lower() != owner.id.lower():
            return False
        return await self.member_of(user.aad_object_id.lower(), [owner.id])

    def _redraws(self, request_id: str, action: CardAction) -> list[FollowUp]:
        return cards_store.redraw_jobs(request_id, action.conversation.conversation_id)

    async def _actor(
        self, user: User, requirement: Requirement | None, doing: str
    ) -> tuple[str, Grant | None]:
        """Who acts (Entra object id), remembered by name; with ``requirement``, a holder of
        the reviewer role (the grant is returned) in one of its reviewer groups."""
        object_id = (user.aad_object_id or "").lower()
        if not object_id:
            raise Refusal("Warden could not tell who you are, so nothing was changed.")
        grant = None
        if requirement is not None:
            grant = await self._roles.require(user, Role.REVIEWER)
        if requirement is not None and self._reviewers is not None:
            try:
                allowed = await self._reviewers.is_reviewer(object_id, requirement)
            except ResponderCheckUnavailable:  # fail closed
                raise Refusal(
                    "Warden could not check that you are a reviewer just now; nothing was "
                    "changed. Try again in a minute."
                ) from None
            if not allowed:
                raise Refusal(
                    f"Only members of the reviewer groups of {requirement.id} can {doing}; "
                    "nothing was changed."
                )
        await cards_store.remember_name(self._store, object_id, user.name)
        return object_id, grant

    def _due(self, typed: str | None) -> date | None:
        if not typed:
            return None
        try:
            due = date.fromisoformat(typed)
        except ValueError:
            raise Refusal(f"{typed} is not a date; write it as YYYY-MM-DD.") from None
        if due < self._today():
            raise Refusal(f"The due date {typed} has passed; choose today or a later day.")
        return due

    def _unknown(self, typed: str) -> Card:
        ids = [r.id for r in self._catalog]
        close = difflib.get_close_matches(typed, ids, n=5, cutoff=0.5) or ids[:5]
        return error_card(
            "Unknown requirement",
            f"The catalog has no requirement {typed or '(none given)'}. "
            f"Did you mean one of: {', '.join(close)}?",
        )


_MENTION_HINT = "Mention the person (@name) or type their UPN (name@domain) after `from`."


def _mentioned(message: Message) -> User | None:
    """The first person the message @mentions, if any (the bot is never one)."""
    return message.mentions[0] if message.mentions else None


def _person(typed: str | None) -> str:
    """The owner as typed: a UPN or an Entra object id (lower-case)."""
    text = (typed or "").strip().lower()
    if not text:
        raise Refusal(f"Who should hand in the evidence? {_MENTION_HINT}")
    if not (UPN.fullmatch(text) or GUID.fullmatch(text)):
        raise Refusal(f"“{text}” is not a person Warden can ask. {_MENTION_HINT}")
    return text
