"""The recorded day (``tests/recordings/day.jsonl``) replayed against a fresh Warden.

Warden and its sandboxes start afresh (``tools.replay_day.day_stack``); the recording is sent
twice through the replay tool's own functions, webhooks re-signed with this instance's
secrets. What a user would notice is counted on the sandboxes' side (cards posted and
redrawn in Teams, writes to ServiceNow and Sentinel) and in Warden's audit chain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from cli.replay import Pass, Target, replay_once
from core.recording import read_recording
from core.store.tally import tally
from tools.replay_day import (
    CHANNEL,
    RECORDING,
    SENTINEL_SECRET,
    SERVICENOW_SECRET,
    Stack,
    day_stack,
)

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Noticed:
    """What users and the systems around Warden can see of its work."""

    card_posts: int
    card_updates: int
    servicenow_writes: int
    sentinel_writes: int
    sharepoint_writes: int
    audit_entries: int
    links: int
    evidence_requests: int


async def _noticed(stack: Stack) -> Noticed:
    counts = await tally(stack.store)
    return Noticed(
        card_posts=len(stack.connector.posts(CHANNEL, successful=True)),
        card_updates=len(stack.connector.updates(CHANNEL, successful=True)),
        servicenow_writes=sum(1 for r in stack.snow.requests if r.method in _WRITES and r.ok),
        sentinel_writes=sum(
            1
            for r in stack.arm.requests
            if r.method in ("PUT", "PATCH", "DELETE") and r.incident_id and r.ok
        ),
        sharepoint_writes=sum(
            1
            for r in stack.graph.requests
            if r.method in _WRITES and r.ok and ("/items" in r.path or "/content" in r.path)
        ),
        audit_entries=counts["audit entries"],
        links=counts["ServiceNow links"],
        evidence_requests=counts["evidence requests"],
    )


async def _pass(stack: Stack, target: Target, client: httpx.AsyncClient) -> Pass:
    done = await replay_once(read_recording(RECORDING), target, client, between=stack.settled)
    await stack.settled()
    await stack.snow.rules.drain()  # ServiceNow's business rule answered about Warden's writes
    await stack.settled()
    return done


async def test_replay_recorded_day_twice_second_pass_changes_nothing(tmp_path: Path) -> None:
    """The first pass posts the incident's card, redraws it, writes Sentinel and ServiceNow,
    links the change and opens the evidence request (SharePoint items, audit entries); the
    second pass adds no card, no write, no SharePoint item and no audit entry."""
    async with day_stack(tmp_path) as stack, httpx.AsyncClient(timeout=30.0) as client:
        target = Target.from_settings(
            stack.settings, url=stack.url, service_url=stack.connector.url
        )
        before = await _noticed(stack)
        first = await _pass(stack, target, client)
        after_first = await _noticed(stack)
        second = await _pass(stack, target, client)
        after_second = await _noticed(stack)
    assert first.accepted == len(first.statuses) == len(read_recording(RECORDING))
    assert after_first.card_posts > before.card_posts
    assert after_first.card_updates > before.card_updates
    assert after_first.sentinel_writes > before.sentinel_writes
    assert after_first.servicenow_writes > before.servicenow_writes
    assert after_first.sharepoint_writes > before.sharepoint_writes
    assert after_first.audit_entries > before.audit_entries
    assert (after_first.links, after_first.evidence_requests) == (1, 1)
    assert after_second == after_first, second.statuses


def _row(output: str, name: str) -> list[str]:
    """The cells of the table row that starts with ``name``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] == name:
            return cells[1:]
    raise AssertionError(f"no row {name!r} in:\n{output}")


async def test_replay_command_twice_table_shows_second_pass_added_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``app.py replay FILE --times 2`` against a running Warden prints, per pass, what was
    added: the incident, its card and ServiceNow link the first time, nothing the second
    (when ServiceNow's repeated messages are refused as replays)."""
    monkeypatch.setattr(console, "_width", 250)
    async with day_stack(tmp_path) as stack:
        snow = stack.settings.servicenow
        env = {
            "WARDEN_DATABASE_URL": stack.settings.effective_database_url,
            "WARDEN_SENTINEL_WEBHOOK_SECRETS": SENTINEL_SECRET,
            "WARDEN_SERVICENOW__INSTANCE_URL": str(snow.instance_url),
            "WARDEN_SERVICENOW__USERNAME": str(snow.username),
            "WARDEN_SERVICENOW__PASSWORD": snow.password.get_secret_value()
            if snow.password
            else "",
            "WARDEN_SERVICENOW__WEBHOOK_SECRETS": SERVICENOW_SECRET,
        }
        args = ["replay", str(RECORDING), "--times", "2", "--speed", "max", "--url", stack.url]
        args += ["--service-url", stack.connector.url, "--settle", "20"]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert _row(result.output, "incidents") == ["0", "+1", "0"]
    assert _row(result.output, "incident cards") == ["0", "+1", "0"]
    assert _row(result.output, "ServiceNow links") == ["0", "+1", "0"]
    posts = _row(result.output, "jobs incident.card")
    assert posts[0] == "0" and posts[1].startswith("+") and posts[2] == "0"
    recorded = read_recording(RECORDING)
    again = sum(1 for item in recorded if item.kind != "servicenow")  # its repeats are 401
    accepted = ["", f"{len(recorded)}/{len(recorded)}", f"{again}/{len(recorded)}"]
    assert _row(result.output, "requests accepted") == accepted
