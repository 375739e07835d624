"""Files attached in a Teams chat as evidence, from the message to the filed copy.

Teams hands the bot a short-lived, pre-authenticated download URL for each file attached in
a personal chat. Warden keeps it here, sealed (``schema_sealed.SEALED``), never in card data: while
the owner picks the request the file is for (``waiting``), then as the submission it became
(``filing``, with the request and submission number) until the ``evidence.file`` job has
streamed it into SharePoint (``filed``), found the URL expired (``expired``) or refused the
file (``refused``). A submission recorded from a file is written in the same transaction
as the file's move to ``filing`` (:func:`submit`), so a restart loses neither.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select, update

from core.catalog import EvidenceKind
from core.evidence import (
    Evidence,
    EvidenceRequest,
    RequestStatus,
    Transition,
)
from core.store import evidence as evidence_store
from core.store import evidence_filing
from core.store import evidence_rows as convert
from core.store.evidence_audit import FollowUp
from core.store.schema_evidence import evidence_chat_files as table
from core.store.schema_evidence import evidence_requests
from core.store.store import Store


class ChatFileState(StrEnum):
    """Where a chat file stands."""

    WAITING = "waiting"
    FILING = "filing"
    FILED = "filed"
    EXPIRED = "expired"
    REFUSED = "refused"


@dataclass(frozen=True)
class ChatFile:
    """A file attached in a chat, as Teams described it (the URL is secret and short-lived)."""

    owner: str
    conversation_id: str
    file_name: str
    download_url: str
    unique_id: str | None = None
    file_type: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class HeldFile(ChatFile):
    """A stored chat file: its id, state and (once submitted) the submission it became."""

    id: str = ""
    state: ChatFileState = ChatFileState.WAITING
    request_id: str | None = None
    version: int | None = None


async def hold(store: Store, file: ChatFile) -> str:
    """Keep ``file`` while its owner picks a request; its id (what a card may carry)."""
    file_id = uuid.uuid4().hex
    now = time.time()
    values = _values(store, file) | {"id": file_id, "created_at": now, "updated_at": now}
    async with store.writing() as conn:
        await conn.execute(table.insert().values(**values, state=ChatFileState.WAITING.value))
    return file_id


async def held(store: Store, file_id: str) -> HeldFile | None:
    """The stored chat file with this id, or ``None``."""
    async with store.reading() as conn:
        row = (await conn.execute(select(table).where(table.c.id == file_id))).first()
    return None if row is None else _held(store, row)


async def for_submission(store: Store, request_id: str, version: int) -> HeldFile | None:
    """The chat file submission ``version`` of the request was made from, if any."""
    stmt = select(table).where(table.c.request_id == request_id, table.c.version == version)
    async with store.reading() as conn:
        row = (await conn.execute(stmt.order_by(table.c.created_at.desc()))).first()
    return None if row is None else _held(store, row)


async def mark(store: Store, file_id: str, state: ChatFileState) -> None:
    """Record that the chat file is now ``state``."""
    stmt = update(table).where(table.c.id == file_id)
    async with store.writing() as conn:
        await conn.execute(stmt.values(state=state.value, updated_at=time.time()))


async def awaiting_files(store: Store, owner: str) -> list[EvidenceRequest]:
    """The requests ``owner`` (an Entra object id) is asked to hand evidence in for, oldest
    first (whether their requirement takes a file is the catalog's to say)."""
    waiting = [RequestStatus.OPEN.value, RequestStatus.CHANGES_REQUESTED.value]
    stmt = (
        select(evidence_requests)
        .where(
            evidence_requests.c.status.in_(waiting),
            func.lower(evidence_requests.c.owner) == owner.strip().lower(),
        )
        .order_by(evidence_requests.c.created_at, evidence_requests.c.id)
    )
    async with store.reading() as conn:
        return [convert.request(row) for row in await conn.execute(stmt)]


async def submit(
    store: Store,
    file: ChatFile,
    request: EvidenceRequest,
    *,
    accepted: Sequence[EvidenceKind],
    jobs: Sequence[FollowUp] = (),
    file_id: str | None = None,
    acts_for_owner: bool = False,
) -> Transition:
    """Record ``file`` as the request's next submission (evidence kind ``file``, its name;
    size and SHA-256 come when filed) and keep it as that submission's source, in one
    transaction. ``file_id``: the held file this is (a new row is written otherwise);
    ``acts_for_owner``: the sender answers for the owner (a member of its owner group)."""
    evidence = Evidence.model_validate({"kind": EvidenceKind.FILE, "file_name": file.file_name})

    def keep(conn: Connection, change: Transition) -> None:
        now = time.time()
        made = {
            "request_id": change.request.id,
            "version": change.request.submission,
            "state": ChatFileState.FILING.value,
            "updated_at": now,
        }
        if file_id is None:
            values = _values(store, file) | made | {"id": uuid.uuid4().hex, "created_at": now}
            conn.execute(table.insert().values(**values))
        else:
            conn.execute(update(table).where(table.c.id == file_id).values(**made))

    return await evidence_store.submit(
        store,
        request.id,
        evidence,
        file.owner,
        seen=request.version,
        acts_for_owner=acts_for_owner,
        accepted=accepted,
        jobs=jobs,
        also=keep,
    )


def _values(store: Store, file: ChatFile) -> dict[str, Any]:
    return {
        "owner": file.owner,
        "conversation_id": file.conversation_id,
        "file_name": file.file_name,
        "download_url": store.cipher.encrypt(file.download_url),
        "unique_id": file.unique_id,
        "file_type": file.file_type,
        "file_size": file.file_size,
    }


def _held(store: Store, row: Any) -> HeldFile:
    return HeldFile(
        owner=row.owner,
        conversation_id=row.conversation_id,
        file_name=row.file_name,
        download_url=store.cipher.decrypt(
            row.download_url, "evidence_chat_files.download_url", row.id
        ),
        unique_id=row.unique_id,
        file_type=row.file_type,
        file_size=row.file_size,
        id=row.id,
        state=ChatFileState(row.state),
        request_id=row.request_id,
        version=row.version,
    )


async def hand_back(
    store: Store,
    file: HeldFile,
    state: ChatFileState,
    reason: str,
    *,
    jobs: Sequence[FollowUp] = (),
) -> bool:
    """The file could not be filed (``state``: expired or refused): send the request back to
    its owner with ``reason``, as Warden, so they attach the file again; nothing is dropped.

    False when the submission is no longer the one under review (a reviewer decided first);
    the file is marked ``state`` either way.
    """
    handed_back = False
    if file.request_id is not None and file.version is not None:  # it was handed in
        handed_back = await evidence_filing.send_back(
            store, file.request_id, file.version, reason, jobs=jobs
        )
    await mark(store, file.id, state)
    return handed_back
