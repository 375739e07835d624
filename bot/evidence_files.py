"""Evidence files attached in a personal chat with Warden.

Teams gives the bot a short-lived, pre-authenticated download URL for a file attached in a
personal chat (``supportsFiles`` in the manifest). A file from the owner of open requests
whose requirement takes a file becomes that request's evidence at once: the submission
(kind ``file``, its name) is recorded with the ``evidence.file`` job that streams it into
SharePoint, in one transaction (``core.store.evidence_chat_files``); the download, hash and
upload run from the outbox, so a failed download or Graph outage is retried. With several
such requests the owner picks one on a card; the card carries the id of the held file, never
its URL. Executable files and files over the upload limit are refused before anything is
kept; a file in a channel is answered with where to attach it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bot.types import Card, CardAction, ChatFile, Message
from cards.common import error_card
from cards.evidence import (
    file_choice_card,
    file_in_channel_card,
    file_received_card,
    no_file_request_card,
)
from core.catalog import Catalog, EvidenceKind, PrincipalKind, Requirement
from core.errors import EvidenceRefused
from core.evidence import EvidenceRequest
from core.evidence_files import UploadLimits, is_executable
from core.models import ConversationKind
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store import evidence_chat_files as chat_store
from core.store.evidence_cards import CardRole
from core.store.store import Store

log = logging.getLogger(__name__)

EVIDENCE_OFF = "Warden has no requirement catalog, so it takes no evidence files."
GONE = "That file is no longer waiting for a request: attach it again."


class AttachFileData(BaseModel):
    """*Attach to this request* on the choice card: the held file and the request picked."""

    model_config = ConfigDict(extra="forbid")

    upload: str = Field(min_length=1, max_length=64)
    request: str = Field(min_length=1, max_length=64)


MemberCheck = Callable[[str, Sequence[str]], Awaitable[bool]]
"""``(object id, group ids) -> bool``: a member (transitively) of one of the groups."""


class ChatFileDesk:
    """Answers messages with files, and the click that says which request a file is for."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        *,
        wake: Callable[[], None] = lambda: None,
        limits: UploadLimits | None = None,
        member_of: MemberCheck | None = None,
    ) -> None:
        """``catalog``: the requirements (None: evidence is off); ``wake``: the outbox's;
        ``member_of``: whether a person is in one of some Entra groups (Graph), so members of
        a requirement's owner group hand files in for it (None: direct owners only)."""
        self._store = store
        self._catalog = catalog
        self._wake = wake
        self._limits = limits or UploadLimits()
        self._member_of = member_of

    async def receive(self, message: Message) -> list[Card]:
        """One card per attached file: handed in, pick a request, or why not."""
        if message.conversation.kind is not ConversationKind.PERSONAL:
            return [file_in_channel_card()]
        if self._catalog is None:
            return [error_card("Evidence is off", EVIDENCE_OFF)]
        owner = (message.user.aad_object_id or "").lower()
        if not owner:
            return [error_card("File not taken", "Warden could not tell who you are.")]
        return [await self._one(message, owner, file) for file in message.files]

    async def _one(self, message: Message, owner: str, attached: ChatFile) -> Card:
        """Refuse, hand in, or ask which request ``attached`` is for."""
        refusal = self._refusal(attached)
        if refusal is not None:
            return error_card("File not accepted", refusal)
        file = chat_store.ChatFile(
            owner=owner,
            conversation_id=message.conversation.conversation_id,
            file_name=attached.name,
            download_url=attached.download_url,
            unique_id=attached.unique_id,
            file_type=attached.file_type,
            file_size=attached.size,
        )
        waiting = await self._taking_files(owner)
        if not waiting:
            return no_file_request_card(attached.name)
        if len(waiting) == 1:
            request, requirement = waiting[0]
            return await self._hand_in(file, request, requirement)
        upload = await chat_store.hold(self._store, file)
        return file_choice_card(attached.name, upload, waiting)

    async def attach(self, action: CardAction, data: BaseModel) -> Card:
        """*Attach to this request*: hand the held file in for the request picked."""
        assert isinstance(data, AttachFileData)
        held = await chat_store.held(self._store, data.upload)
        owner = (action.user.aad_object_id or "").lower()
        if (
            held is None
            or held.owner != owner
            or held.state is not chat_store.ChatFileState.WAITING
        ):
            return error_card("File not attached", GONE)
        picked = [pair for pair in await self._taking_files(owner) if pair[0].id == data.request]
        if not picked:
            return error_card(
                "File not attached",
                "That request no longer waits for your evidence; attach the file again.",
            )
        request, requirement = picked[0]
        return await self._hand_in(held, request, requirement, file_id=held.id)

    def _refusal(self, attached: ChatFile) -> str | None:
        """Why ``attached`` cannot be evidence, or None."""
        if is_executable(attached.name):
            return (
                f"“{attached.name}” is an executable file, and executable files are not "
                "accepted as evidence. Attach a document, an export or a screenshot instead."
            )
        if attached.size is not None and attached.size > self._limits.max_bytes:
            limit = self._limits.max_bytes // (1024 * 1024)
            return f"“{attached.name}” is larger than Warden accepts (at most {limit} MiB)."
        return None

    async def _taking_files(self, owner: str) -> list[tuple[EvidenceRequest, Requirement]]:
        """The owner's requests awaiting evidence whose requirement takes a file: asked of
        them, or of an owner group they are a member of."""
        assert self._catalog is not None
        found = []
        for request in await chat_store.awaiting_files(self._store, owner):
            requirement = self._catalog.get(request.requirement_id)
            if requirement is not None and EvidenceKind.FILE in requirement.evidence:
                found.append((request, requirement))
        for group in await self._owner_groups_of(owner):
            for request in await chat_store.awaiting_files(self._store, group):
                requirement = self._catalog.get(request.requirement_id)
                if requirement is not None and EvidenceKind.FILE in requirement.evidence:
                    found.append((request, requirement))
        return found

    async def _owner_groups_of(self, person: str) -> list[str]:
        """The catalog's owner groups (of requirements taking files) ``person`` is in."""
        assert self._catalog is not None
        if self._member_of is None:
            return []
        groups = {
            r.owner.id
            for r in self._catalog
            if r.owner.kind is PrincipalKind.GROUP and EvidenceKind.FILE in r.evidence
        }
        return [group for group in sorted(groups) if await self._member_of(person, [group])]

    async def _hand_in(
        self,
        file: chat_store.ChatFile,
        request: EvidenceRequest,
        requirement: Requirement,
        *,
        file_id: str | None = None,
    ) -> Card:
        """Record the submission with its filing and card jobs; answer with what happened."""
        where = await cards_store.posted_in(self._store, request.id, CardRole.OWNER)
        jobs = [job for place in where for job in cards_store.redraw_jobs(request.id, place)]
        jobs += evidence_store.filing_jobs(request.id, where[0] if where else "")
        try:
            change = await chat_store.submit(
                self._store,
                file,
                request,
                accepted=requirement.evidence,
                jobs=jobs,
                file_id=file_id,
                acts_for_owner=request.owner.lower() != file.owner,  # for its owner group
            )
        except EvidenceRefused as refused:
            return error_card("File not handed in", refused.user_message)
        self._wake()
        log.info("evidence request %s: a file was handed in from chat", request.id)
        return file_received_card(change.request, requirement, file.file_name)
