"""The reconcile in a running Warden and on the command line: cards follow, never twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from core.errors import SettingsError
from core.settings import load_settings
from sandbox.arm import ArmSandbox, run_arm_sandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.reconcile_support import OPEN_FILTER, arm_settings, make_incidents, run_cli

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS, with its Entra token endpoint and no example data."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as sandbox:
        yield sandbox


def posts_by_title(warden: Warden, conversation: str, made: list[dict[str, Any]]) -> list[int]:
    """How many incident cards were posted for each incident of ``made``, in order."""
    bodies = [json.dumps(r.body) for r in warden.card_posts(conversation)]
    titles = [str(i["properties"]["title"]) for i in made]
    return [sum(title in body for body in bodies) for title in titles]


def cli_keys(warden: Warden) -> list[str]:
    """The encryption keys the running Warden was given (none: both use var/'s dev key)."""
    return [key.get_secret_value() for key in warden.settings.encryption_keys]


@SQLITE
async def test_reconcile_at_start_posts_missed_open_incidents_webhook_card_not_reposted(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Started after a missed night, Warden posts the open incidents polling cannot see.

    The one a webhook already delivered is not posted again; closed ones never are.
    """
    made = make_incidents(arm, ["New", "Active", "Closed", "Active"])
    first = await start_warden()  # webhooks only
    conversation = await first.subscribed_channel()
    assert (await first.webhook(made[0])).status == 202
    await first.connector.wait_for(lambda s: first.card_posts(conversation))
    await first.client.close()
    second = await start_warden(**arm_settings(arm))  # polls, and reconciles at once
    await second.connector.wait_for(lambda s: len(second.card_posts(conversation)) >= 3)
    await second.delivered(3)
    assert posts_by_title(second, conversation, made) == [1, 1, 0, 1]
    reconciled = [r for r in arm.calls("Incidents_List") if r.query.get("$filter") == OPEN_FILTER]
    assert len(reconciled) == 1 and reconciled[0].ok


@SQLITE
async def test_cli_reconcile_with_running_warden_posts_missed_cards_once_then_only_changes(
    start_warden: WardenFactory, arm: ArmSandbox, database_url: str, tmp_path: Path
) -> None:
    """`sentinel reconcile` stores what was missed; Warden posts each card once, then updates."""
    made = make_incidents(arm, ["New", "Closed", "Active", "New"])
    warden = await start_warden()  # webhooks only: the command line reconciles
    conversation = await warden.subscribed_channel()
    assert (await warden.webhook(made[0])).status == 202
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    keys = cli_keys(warden)
    code, output = await run_cli(arm, tmp_path, database_url, "sentinel", "reconcile", keys=keys)
    assert code == 0, output
    assert "finished: 3 open incident(s) read, 2 changed, in 1 page(s)" in output
    await warden.delivered(3)
    assert posts_by_title(warden, conversation, made) == [1, 0, 1, 1]
    arm.portal_update(made[2]["name"], severity="Low")
    args = ("sentinel", "reconcile", "--restart")
    code, output = await run_cli(arm, tmp_path, database_url, *args, keys=keys)
    assert code == 0 and "3 open incident(s) read, 1 changed" in output, output
    await warden.delivered(4)
    assert len(warden.connector.updates(conversation, successful=True)) == 1
    assert posts_by_title(warden, conversation, made) == [1, 0, 1, 1]


def test_cli_reconcile_without_workspace_exits_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without WARDEN_SENTINEL_WORKSPACES the command says what to set and opens nothing."""
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("WARDEN_SENTINEL_WORKSPACES", "")
    monkeypatch.delenv("WARDEN_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["sentinel", "reconcile"])
    assert result.exit_code == 2
    assert "no Sentinel workspace is configured: set WARDEN_SENTINEL_WORKSPACES" in result.output
    assert not (tmp_path / "warden.db").exists()


@pytest.mark.parametrize("value", ["25:00", "2:30", "02:60", "noon"])
def test_settings_reconcile_at_not_hh_mm_refused_naming_the_variable(
    tmp_path: Path, value: str
) -> None:
    """A time of day that is not HH:MM (24-hour) stops start-up, naming the variable."""
    with pytest.raises(SettingsError, match="WARDEN_SENTINEL_RECONCILE_AT"):
        load_settings(var_dir=tmp_path, sentinel_reconcile_at=value)
    default = load_settings(var_dir=tmp_path)
    assert default.sentinel_reconcile_enabled
    assert default.sentinel_reconcile_time == time(2, 30, tzinfo=UTC)
