"""An evidence requirement owned by an Entra group: any member answers for it.

A request from the catalog (Azure Policy, campaigns) names the requirement's owner group;
its members hand in from the card (checked in Graph, transitively), others may not, and a
member may not approve what the group handed in (separation of duties).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cards.verbs import CardVerb
from core.evidence import RequestStatus
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_evidence_chat import button_data, text_of
from tests.integration.test_evidence_personal import (
    CHANNEL,
    OWNER,
    REVIEWERS,
    RITA,
    Desk,
    graph,  # noqa: F401 - the fixture
    only_request,
    open_desk,
)

BACKUP_TEAM = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
CATALOG = f"""\
requirements:
  - id: ISO-A.8.13
    title: Backups are tested
    guidance: A restore test report.
    evidence: [attestation]
    owner: "{BACKUP_TEAM}"
    reviewers: ["{REVIEWERS}"]
    due_days: 14
"""


@pytest.fixture
async def desk(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    graph: GraphSandbox,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> Desk:
    """Warden with a group-owned requirement; Olivia in the backup team and a reviewer."""
    arm.set_member_groups(OWNER["aadObjectId"], [BACKUP_TEAM, REVIEWERS])
    return await open_desk(start_warden, arm, graph, tmp_path, CATALOG)


async def test_group_member_hands_in_others_may_not_and_member_may_not_approve(
    desk: Desk,
) -> None:
    await desk.say(f"request evidence ISO-A.8.13 from {BACKUP_TEAM}")
    request = await only_request(desk, "ISO-A.8.13")
    assert request.owner == BACKUP_TEAM
    (card,) = desk.cards(CHANNEL, "Evidence requested: ")

    refused = await desk.hand_in(RITA, card, conversation=CHANNEL)  # a reviewer, not the team
    assert (await only_request(desk, "ISO-A.8.13")).status is RequestStatus.OPEN
    assert "owner" in text_of(refused).lower()

    await desk.hand_in(OWNER, card, conversation=CHANNEL)  # a member of the owner group
    submitted = await only_request(desk, "ISO-A.8.13")
    assert submitted.status is RequestStatus.SUBMITTED

    (review,) = desk.cards(CHANNEL, "Evidence to review: ")[-1:]
    approve = button_data(review, CardVerb.EVIDENCE_APPROVE.value)
    answer = await desk.click(OWNER, CardVerb.EVIDENCE_APPROVE, approve, CHANNEL)
    assert (await only_request(desk, "ISO-A.8.13")).status is RequestStatus.SUBMITTED
    assert "approve" in text_of(answer).lower()
