"""A compliance channel where Azure Policy evidence is requested, handed in, filed and approved.

Shared by the write-back tests: Warden attesting to the ARM sandbox with a catalog, a policy
request opened as the poller opens one, the owner's link filed as SharePoint would file it,
and the ``policy.attest`` jobs waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app import STORE, WORKER
from bot.evidence import card_job, quarter
from cards.verbs import CardVerb
from core.catalog import load_catalog
from core.evidence import RequestSource, draft_for
from core.store import evidence as evidence_store
from core.store import evidence_filing, outbox
from core.store.evidence_cards import CardRole
from core.store.posture import POLICY_ATTEST_JOB
from core.store.store import Store
from sandbox.arm import ArmSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_evidence_chat import OWNER, RITA, Room
from tests.integration.triage_support import connected_settings
from tests.support import channel_id

CHANNEL = channel_id("compliance")


@dataclass(frozen=True)
class FiledLink:
    """The owner's link and where SharePoint filed it."""

    link: str
    web_url: str
    item_id: str
    sha256: str
    file_name: str


async def policy_room(
    tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox, catalog: str, scope: str
) -> Room:
    """Warden attesting to the ARM sandbox, installed in the compliance channel."""
    path = tmp_path / "requirements.yaml"
    path.write_text(catalog, encoding="utf-8")
    settings = connected_settings(
        arm,
        requirements_file=path,
        policy_scopes=f"{scope}/resourceGroups/rg-polled",
        policy_poll_seconds=3600,
    )
    warden = await start_warden(**settings)
    await warden.install(CHANNEL)
    return Room(warden, CHANNEL)


def store_of(room: Room) -> Store:
    store: Store = room.warden.client.app[STORE]
    return store


async def open_policy_request(room: Room, requirement_id: str, *resources: str) -> str:
    """Open a policy request for ``resources`` as the poller does (owner's card posted)."""
    catalog = room.warden.settings.requirements_file
    assert catalog is not None
    requirement = load_catalog(catalog).get(requirement_id)
    assert requirement is not None
    today = datetime.now(UTC).date()
    draft = draft_for(
        requirement,
        source=RequestSource.POLICY,
        period=quarter(today),
        requested_by="warden",
        today=today,
        scope=resources[0],
        owner=OWNER["aadObjectId"],
        resources=resources,
    )
    job = card_job(draft.dedupe_key(), CardRole.OWNER, CHANNEL, by_key=True)
    request, created = await evidence_store.open_request(store_of(room), draft, jobs=[job])
    assert created
    room.warden.client.app[WORKER].wake()
    await room.settled()
    return request.id


async def approve_filed(room: Room, request_id: str, filed: FiledLink) -> None:
    """The owner hands in ``filed``'s link, SharePoint files it, Rita approves."""
    await room.click(CardVerb.EVIDENCE_SUBMIT, OWNER, {"kind": "link", "link": filed.link})
    values = {
        "web_url": filed.web_url,
        "item_id": filed.item_id,
        "sha256": filed.sha256,
        "file_name": filed.file_name,
        "file_size": 19,
    }
    assert await evidence_filing.record_filed(store_of(room), request_id, 1, values)
    await room.click(CardVerb.EVIDENCE_APPROVE, RITA)


async def attest_jobs(room: Room) -> list[outbox.JobRow]:
    return [j for j in await outbox.list_jobs(store_of(room)) if j.kind == POLICY_ATTEST_JOB]


async def attested(room: Room) -> list[outbox.JobRow]:
    """Wait until no ``policy.attest`` job is left to run; those jobs."""

    async def idle() -> bool:
        jobs = await attest_jobs(room)
        return bool(jobs) and all(j.status not in outbox.UNFINISHED for j in jobs)

    await room.warden.client.app[WORKER].wait_until(idle)
    return await attest_jobs(room)
