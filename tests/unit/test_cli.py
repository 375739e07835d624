"""The command line: settings table, database upgrade, outbox list and retry, demo errors."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console
from core.crypto import PayloadCipher, ensure_dev_key
from core.settings.table import settings_table
from core.store import migrate, outbox
from core.store.store import Store

README = Path(__file__).resolve().parents[2] / "README.md"
runner = CliRunner()


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated var/ directory for the command line, on a wide terminal."""
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("WARDEN_DATABASE_URL", raising=False)
    monkeypatch.delenv("WARDEN_ENCRYPTION_KEYS", raising=False)
    return tmp_path


def _dead_job(var_dir: Path) -> int:
    """Put one dead job into the var/ database and return its id."""

    async def run() -> int:
        store = Store.from_url(
            f"sqlite+aiosqlite:///{(var_dir / 'warden.db').resolve()}",
            cipher=PayloadCipher([ensure_dev_key(var_dir)]),
        )
        try:
            await store.upgrade()
            job = {"incident_key": "x"}
            row = outbox.job_row(
                "incident.card", "k", job, cipher=store.cipher, conversation_id="c"
            )
            async with store.writing() as conn:
                from core.store.schema import outbox as table

                result = await conn.execute(table.insert().values(**row))
                key = result.inserted_primary_key
                assert key is not None
                job_id = int(key[0])
            await outbox.bury(store, job_id, 8, "fail: connector answered 400 (BadArgument)")
            return job_id
        finally:
            await store.close()

    return asyncio.run(run())


def test_cli_readme_settings_table_current() -> None:
    """README's configuration table is exactly what the settings model generates."""
    readme = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", readme, re.S)
    assert match, "README lacks the settings markers"
    assert match.group(1) == settings_table(), "run `python app.py settings` and paste it"


def test_cli_db_upgrade_reports_revision(var_dir: Path) -> None:
    """`db upgrade` creates the database and names its revision."""
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {migrate.head_revision()}" in result.output
    assert (var_dir / "warden.db").exists()


def test_cli_outbox_list_dead_shows_reason(var_dir: Path) -> None:
    """`outbox list --status dead` shows the dead job with its reason."""
    job_id = _dead_job(var_dir)
    result = runner.invoke(cli, ["outbox", "list", "--status", "dead"])
    assert result.exit_code == 0, result.output
    assert str(job_id) in result.output and "BadArgument" in result.output


def test_cli_outbox_retry_dead_job_pending_again(var_dir: Path) -> None:
    """`outbox retry ID` makes a dead job pending again; an unknown id fails clearly."""
    job_id = _dead_job(var_dir)
    assert runner.invoke(cli, ["outbox", "retry", str(job_id)]).exit_code == 0
    listed = runner.invoke(cli, ["outbox", "list", "--status", "pending"])
    assert str(job_id) in listed.output
    missing = runner.invoke(cli, ["outbox", "retry", "999"])
    assert missing.exit_code == 1 and "no dead or pending job 999" in missing.output


def test_cli_demo_update_without_incident_explains(var_dir: Path) -> None:
    """`demo incident --update` before any demo incident says what to run first."""
    result = runner.invoke(cli, ["demo", "incident", "--update"])
    assert result.exit_code == 1
    assert "demo incident" in result.output


def test_cli_demo_warden_down_explains(var_dir: Path) -> None:
    """`demo incident` against no running Warden says it is not reachable."""
    result = runner.invoke(cli, ["demo", "incident", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "not reachable" in result.output


def test_cli_bad_setting_exits_naming_variable(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad setting stops any command with the variable's name and exit code 2."""
    monkeypatch.setenv("WARDEN_PORT", "many")
    result = runner.invoke(cli, ["outbox", "list"])
    assert result.exit_code == 2
    assert "WARDEN_PORT" in result.output


def test_cli_dlq_list_show_replay_purge(var_dir: Path) -> None:
    """The DLQ commands list, show, replay (once) and purge a dead job."""
    first, second = _dead_job(var_dir), _dead_job(var_dir)
    listed = runner.invoke(cli, ["dlq", "list"])
    assert str(first) in listed.output and "BadArgument" in listed.output
    shown = runner.invoke(cli, ["dlq", "show", str(first)])
    assert '"incident_key": "x"' in shown.output
    assert "replayed" in runner.invoke(cli, ["dlq", "replay", str(first)]).output
    again = runner.invoke(cli, ["dlq", "replay", str(first)])
    assert again.exit_code == 0 and "not in the dead-letter queue" in again.output
    assert runner.invoke(cli, ["dlq", "purge", str(second)]).exit_code == 0
    assert runner.invoke(cli, ["dlq", "purge", str(second)]).exit_code == 1
    assert "empty" in runner.invoke(cli, ["dlq", "list"]).output


def test_cli_dlq_replay_all_counts(var_dir: Path) -> None:
    """`dlq replay --all` replays every DLQ job and says how many; no id and no --all fails."""
    _dead_job(var_dir)
    _dead_job(var_dir)
    assert "2 job(s) replayed" in runner.invoke(cli, ["dlq", "replay", "--all"]).output
    assert runner.invoke(cli, ["dlq", "replay"]).exit_code == 2


def test_cli_admin_log_records_replay_and_purge_with_actor(var_dir: Path) -> None:
    """DLQ replays and purges are recorded with the operator and shown by admin-log."""
    first, second = _dead_job(var_dir), _dead_job(var_dir)
    runner.invoke(cli, ["dlq", "replay", str(first)])
    runner.invoke(cli, ["dlq", "purge", str(second)])
    log = runner.invoke(cli, ["admin-log"])
    assert log.exit_code == 0
    assert "dlq.replay" in log.output and "dlq.purge" in log.output
    assert "os:" in log.output
