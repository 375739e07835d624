"""`campaign start` and `campaign status`: one request per requirement of a period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from core.catalog import EvidenceKind
from core.crypto import PayloadCipher, ensure_dev_key
from core.evidence import DecisionKind, Evidence, RequestSource, Verdict
from core.models import ConversationRef
from core.store import admin_audit, outbox
from core.store import evidence as evidence_store
from core.store.evidence_cards import EVIDENCE_CARD_JOB
from core.store.store import Store

T = TypeVar("T")
runner = CliRunner()
CHANNEL = "19:evidence0channel@thread.tacv2"
OWNER = "owner@contoso.com"
REVIEWERS = "5f3e1c2a-8b4d-4e6f-9a1b-2c3d4e5f6a7b"
CATALOG = """\
requirements:
{items}
"""
ITEM = """\
  - id: {rid}
    title: Evidence for {rid}
    guidance: Show it.
    evidence: [attestation, link]
    owner: {owner}
    reviewers: [{reviewers}]
    due_days: 30
"""
IDS = ("ISO-A.5.1", "ISO-A.8.13", "SOC2-CC6.1")


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated var/ directory, a three-requirement catalog and a wide terminal."""
    catalog = tmp_path / "requirements.yaml"
    items = "".join(ITEM.format(rid=rid, owner=OWNER, reviewers=REVIEWERS) for rid in IDS)
    catalog.write_text(CATALOG.format(items=items.rstrip("\n")), encoding="utf-8")
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("WARDEN_REQUIREMENTS_FILE", str(catalog))
    for name in ("WARDEN_DATABASE_URL", "WARDEN_ENCRYPTION_KEYS", "WARDEN_EVIDENCE_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    return tmp_path


def _on_store(var_dir: Path, work: Callable[[Store], Awaitable[T]], url: str | None = None) -> T:
    """Run ``work`` against the database the command line uses."""

    async def run() -> T:
        store = Store.from_url(
            url or f"sqlite+aiosqlite:///{(var_dir / 'warden.db').resolve()}",
            cipher=PayloadCipher([ensure_dev_key(var_dir)]),
        )
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _start(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["campaign", "start", "2026-Q4 ISO review", *args])
    return result.exit_code, result.output


def test_campaign_start_opens_one_campaign_request_per_requirement(var_dir: Path) -> None:
    """`start --all` opens a campaign request for each requirement, for the period given."""
    code, output = _start("--all", "--period", "2026-Q4")
    assert code == 0, output
    assert "3 opened, 0 already open" in output
    requests = _on_store(var_dir, lambda s: evidence_store.list_requests(s, period="2026-Q4"))
    assert sorted(r.requirement_id for r in requests) == sorted(IDS)
    assert {r.source for r in requests} == {RequestSource.CAMPAIGN}
    assert {r.owner for r in requests} == {OWNER}


def test_campaign_start_again_opens_nothing_new(var_dir: Path) -> None:
    """A second start of the same campaign opens nothing and says what was already open."""
    assert _start("--requirements", "ISO-A.5.1,SOC2-CC6.1", "--period", "2026-Q4")[0] == 0
    code, output = _start("--all")
    assert code == 0, output
    assert "1 opened, 2 already open" in output
    code, output = _start("--all")
    assert "0 opened, 3 already open" in output
    assert len(_on_store(var_dir, evidence_store.list_requests)) == 3
    entries = _on_store(var_dir, lambda s: admin_audit.entries(s, 10))
    starts = [e for e in entries if e.action == "campaign.start"]
    assert len(starts) == 3 and starts[0].actor.startswith("os:")
    assert starts[-1].target == "2026-Q4 ISO review" and starts[-1].details["period"] == "2026-Q4"


def test_campaign_start_unknown_requirement_exits_2_naming_it(var_dir: Path) -> None:
    """An unknown id stops the start before anything is opened, naming it and the close id."""
    code, output = _start("--requirements", "ISO-A.5.1,ISO-A.8.31")
    assert code == 2
    assert "ISO-A.8.31" in output and "did you mean ISO-A.8.13" in output
    assert _on_store(var_dir, evidence_store.list_requests) == []


def test_campaign_start_due_in_past_exits_2(var_dir: Path) -> None:
    """A due date in the past is refused."""
    code, output = _start("--all", "--due", "2020-01-31")
    assert code == 2 and "2020-01-31 is in the past" in output


def test_campaign_start_due_given_sets_every_request(var_dir: Path) -> None:
    """`--due` is every request's due date."""
    assert _start("--all", "--due", "2099-12-31")[0] == 0
    requests = _on_store(var_dir, evidence_store.list_requests)
    assert {r.due.isoformat() for r in requests} == {"2099-12-31"}


async def _approve_first(store: Store) -> None:
    request = (await evidence_store.list_requests(store, requirement=IDS[0]))[0]
    evidence = Evidence.model_validate({"kind": EvidenceKind.ATTESTATION, "text": "Reviewed."})
    change = await evidence_store.submit(store, request.id, evidence, OWNER, seen=request.version)
    await evidence_store.decide(
        store,
        request.id,
        Verdict.model_validate({"kind": DecisionKind.APPROVE}),
        "reviewer-object-id",
        seen=change.request.version,
    )


def _status_after_one_approval(var_dir: Path, url: str | None = None) -> None:
    assert _start("--all", "--period", "2026-Q4")[0] == 0
    _on_store(var_dir, _approve_first, url)
    result = runner.invoke(cli, ["campaign", "status", "2026-Q4 ISO review"])
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if IDS[0] in row)
    assert "approved" in line and "1/1" in line
    assert "3 requested" in result.output and "1 approved" in result.output
    assert "33% complete" in result.output
    overview = runner.invoke(cli, ["campaign", "status"])
    assert "2026-Q4 ISO review" in overview.output and "33%" in overview.output


def test_campaign_status_shows_completion_after_approval(var_dir: Path) -> None:
    """After one of three requests is approved, status shows it and 33% complete."""
    _status_after_one_approval(var_dir)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_campaign_status_on_postgres_shows_completion(
    var_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same campaign run works on PostgreSQL (the SQLite run is the test above)."""
    monkeypatch.setenv("WARDEN_DATABASE_URL", database_url)
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    _status_after_one_approval(var_dir, database_url)


def test_campaign_status_unknown_name_exits_1(var_dir: Path) -> None:
    """Status of a campaign that was never started says so."""
    result = runner.invoke(cli, ["campaign", "status", "nope"])
    assert result.exit_code == 1 and "no campaign 'nope'" in result.output


async def _add_channel(store: Store) -> None:
    ref = ConversationRef(conversation_id=CHANNEL, service_url="https://smba.example/teams/")
    await store.save_conversation(ref)


def test_campaign_start_queues_owner_cards_for_evidence_channel(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With WARDEN_EVIDENCE_CHANNEL set and known, each opened request queues an owner card."""
    _on_store(var_dir, _add_channel)
    monkeypatch.setenv("WARDEN_EVIDENCE_CHANNEL", CHANNEL)
    code, output = _start("--requirements", "ISO-A.5.1,ISO-A.8.13")
    assert code == 0 and "2 owner card(s) queued" in output, output
    jobs = _on_store(var_dir, lambda s: outbox.list_jobs(s, None, 100))
    cards = [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]
    assert len(cards) == 2 and {job.conversation_id for job in cards} == {CHANNEL}
    assert "0 opened, 2 already open" in _start("--requirements", "ISO-A.5.1,ISO-A.8.13")[1]
    jobs = _on_store(var_dir, lambda s: outbox.list_jobs(s, None, 100))
    assert len([job for job in jobs if job.kind == EVIDENCE_CARD_JOB]) == 2


def test_campaign_start_without_channel_opens_without_cards(var_dir: Path) -> None:
    """Without an evidence channel the requests are opened and no card job is queued."""
    code, output = _start("--all")
    assert code == 0 and "no cards posted" in output
    jobs = _on_store(var_dir, lambda s: outbox.list_jobs(s, None, 100))
    assert not [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]
