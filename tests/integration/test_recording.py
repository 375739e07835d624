"""``WARDEN_RECORD_DIR``: accepted inbound requests recorded, redacted; refused ones not."""

from __future__ import annotations

from pathlib import Path

from core.recording import Recorded, read_recording
from tests.integration.conftest import WardenFactory, incident
from tests.support import OTHER_SECRET, USER, channel_id


def _recorded(directory: Path) -> list[Recorded]:
    return [item for file in sorted(directory.glob("*.jsonl")) for item in read_recording(file)]


def _raw(directory: Path) -> str:
    return "".join(file.read_text() for file in sorted(directory.rglob("*.jsonl")))


async def test_recording_accepted_webhook_kept_refused_one_not(
    start_warden: WardenFactory, tmp_path: Path
) -> None:
    """A signed webhook is recorded with its webhook id and without its signature; one with
    a wrong signature (401) is not recorded."""
    warden = await start_warden(record_dir=tmp_path / "recorded")
    accepted = await warden.webhook(incident(), msg_id="msg_accepted")
    refused = await warden.webhook(incident(), secret=OTHER_SECRET, msg_id="msg_refused")
    assert (accepted.status, refused.status) == (202, 401)
    [line] = _recorded(tmp_path / "recorded")
    assert (line.kind, line.status) == ("sentinel", 202)
    assert line.headers == {"webhook-id": "msg_accepted"}
    assert "v1," not in _raw(tmp_path) and "signature" not in _raw(tmp_path)


async def test_recording_command_kept_sender_name_hidden(
    start_warden: WardenFactory, tmp_path: Path
) -> None:
    """A command to Warden is recorded with its words; the sender's name is not in the file,
    their ids are."""
    warden = await start_warden(record_dir=tmp_path / "recorded")
    conversation = channel_id("recorded")
    await warden.install(conversation)
    await warden.say(conversation, "status")
    lines = _recorded(tmp_path / "recorded")
    assert [line.kind for line in lines] == ["activity", "activity"]
    assert lines[1].body["text"] == "<at>Warden</at> status"
    assert lines[1].body["from"]["aadObjectId"] == USER["aadObjectId"]
    assert USER["name"] not in _raw(tmp_path)


async def test_recording_off_by_default_writes_nothing(
    start_warden: WardenFactory, tmp_path: Path
) -> None:
    """Without ``WARDEN_RECORD_DIR`` no recording file appears."""
    warden = await start_warden()
    assert (await warden.webhook(incident())).status == 202
    assert _raw(tmp_path) == ""
