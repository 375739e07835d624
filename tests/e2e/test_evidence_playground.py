"""An evidence request in the Agents Playground, as ``make run`` serves it, end to end.

Warden starts as ``python app.py serve --playground`` does: the example requirement catalog,
the sandbox Sentinel (Entra ID and its directory, where the Playground's people are members of
the catalog's reviewer groups), the sandbox SharePoint (provisioned at start) and the
Playground. Alex Wilber asks Megan Bowen for evidence in a channel; she links a report; Adele
Vance and Isaiah Langer approve it; the cards and the sandbox SharePoint show the outcome.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.graph_files import DriveFiles
from sandbox.playground_client import PlaygroundClient
from tests.e2e.card_support import STEP_SECONDS
from tests.e2e.evidence_support import (
    REPORT,
    REQUIREMENT,
    Running,
    approve_twice,
    eventually,
    evidence_page,
    make_run,
    make_run_settings,
    request_and_submit,
    sp_list,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
async def running(node_modules: Path, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Running]:
    """Warden as ``make run`` starts it, on free ports."""
    async with make_run(make_run_settings(tmp_path, sqlite_url)) as up:
        yield up


async def test_playground_request_submit_link_two_approvals_recorded_in_sharepoint(
    running: Running,
) -> None:
    """The owner's card, her link, the reviewers' card with the file's SHA-256 and two
    approvals by other people end Approved on the cards; SharePoint holds the request's
    item, the file with that hash, and hash-chained audit entries for each step."""
    digest = hashlib.sha256(REPORT).hexdigest()
    async with (
        evidence_page(running.settings) as link,
        PlaygroundClient(running.playground_url, timeout=STEP_SECONDS) as client,
        client.stream() as stream,
    ):
        config = await client.test_config()
        review = await request_and_submit(client, stream, link)
        final = await approve_twice(client, stream, review)
        assert "Adele Vance" in final and "Isaiah Langer" in final and digest in final

    def done(state: dict[str, object]) -> bool:
        items = sp_list(state, "Evidence Requests")["items"]
        return any(i["fields"].get("Status") == "Approved" for i in items)

    state = await eventually(running.sharepoint_state, done)
    [request_item] = sp_list(state, "Evidence Requests")["items"]
    fields = request_item["fields"]
    assert (fields["RequirementId"], fields["Approvals"], fields["ApprovalsNeeded"]) == (
        REQUIREMENT,
        2,
        2,
    )
    assert fields["Owner"] == config.users[1]["aadObjectId"]
    library = sp_list(state, "Evidence")
    [filed] = [i["fields"] for i in library["items"] if i["fields"].get("Sha256")]
    assert filed["Sha256"] == digest and filed["RequestId"] == fields["RequestId"]
    [file_item] = [d for d in library["drive_items"] if d["name"].endswith(".txt")]
    files = DriveFiles(running.settings.var_dir / "graph-sandbox" / "files")
    assert files.path(library["drive_id"], file_item["id"]).read_bytes() == REPORT

    def audited(state: dict[str, object]) -> bool:
        rows = sp_list(state, "Audit Log")["items"]
        return len(rows) >= 4  # requested, submitted, approved twice

    state = await eventually(running.sharepoint_state, audited)
    rows = sorted(
        (i["fields"] for i in sp_list(state, "Audit Log")["items"]), key=lambda f: f["Seq"]
    )
    assert {row["RequestId"] for row in rows} == {fields["RequestId"]}
    assert all(len(row["Hash"]) == 64 for row in rows)
    assert all(b["PrevHash"] == a["Hash"] for a, b in itertools.pairwise(rows))
