"""Recorded inbound traffic: redaction, the line format, spacing, and how a replay sends it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import typer

from cli.replay import ReplayRefused, Target, check, parse_speed, request_of
from core.logs import REDACTED, Scrubber
from core.recording import Recorded, Redactor, spacing
from core.signing import WebhookVerifier, sign

SECRET = "whsec_" + "cmVjb3JkaW5nLXVuaXQtdGVzdHMtc2VjcmV0LTEyMzQ="
AT = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


def _redactor() -> Redactor:
    return Redactor({"link", "subscribe", "help"}, Scrubber(pepper=b"pepper"))


def _message(text: str) -> dict[str, object]:
    return {
        "type": "message",
        "id": "1700000000123",
        "text": text,
        "from": {"id": "29:adele", "name": "Adele Vance", "aadObjectId": "2046feea"},
        "recipient": {"id": "28:warden", "name": "Warden"},
        "conversation": {"id": "19:soc@thread.tacv2"},
        "entities": [{"type": "mention", "text": "<at>Warden</at>"}],
    }


def test_redactor_command_message_keeps_words_and_bot_mention() -> None:
    """A command to Warden keeps its words, so a replay runs the same command."""
    body = _redactor().redact("activity", _message("<at>Warden</at> link 3177 to CHG0030003"))
    assert body["text"] == "<at>Warden</at> link 3177 to CHG0030003"
    assert body["entities"][0]["text"] == "<at>Warden</at>"


def test_redactor_free_text_message_stable_pseudonym() -> None:
    """Text that is not a command becomes ``text:<hash>``: the same text, the same stand-in."""
    redactor = _redactor()
    first = redactor.redact("activity", _message("<at>Warden</at> my wife's phone is 0612"))
    again = redactor.redact("activity", _message("<at>Warden</at> my wife's phone is 0612"))
    other = redactor.redact("activity", _message("<at>Warden</at> lunch?"))
    assert first["text"].startswith("text:") and "phone" not in json.dumps(first)
    assert first["text"] == again["text"] != other["text"]


def test_redactor_sender_name_pseudonymised_ids_kept() -> None:
    """The sender's name is a pseudonym; the ids that route the activity stay."""
    body = _redactor().redact("activity", _message("<at>Warden</at> help"))
    assert body["from"]["name"].startswith("text:")
    assert body["from"]["id"] == "29:adele" and body["from"]["aadObjectId"] == "2046feea"
    assert body["conversation"]["id"] == "19:soc@thread.tacv2"
    assert body["recipient"]["name"] == "Warden"


def test_redactor_webhook_secrets_addresses_and_free_text_removed() -> None:
    """Secret-named fields are redacted, e-mail addresses pseudonymised, descriptions hidden."""
    incident = {
        "name": "73e01a99",
        "properties": {
            "title": "Suspicious sign-in",
            "description": "Adele's laptop at home",
            "owner": {"email": "adele@contoso.com", "objectId": "2046feea"},
            "clientSecret": "s3cr3t-value-long",
        },
    }
    body = _redactor().redact("sentinel", incident)
    text = json.dumps(body)
    assert "adele@contoso.com" not in text and "laptop" not in text and "s3cr3t" not in text
    assert body["properties"]["clientSecret"] == REDACTED
    assert body["properties"]["owner"]["email"].startswith("user:")
    assert body["properties"]["title"] == "Suspicious sign-in"
    assert body["name"] == "73e01a99"


def test_recorded_line_parses_back() -> None:
    """A line parses back into the same request."""
    recorded = Recorded(
        AT, "sentinel", "/api/webhooks/sentinel", 202, {"a": 1}, {"webhook-id": "m"}
    )
    assert Recorded.parse(recorded.line()) == recorded


def test_recorded_parse_other_version_refused() -> None:
    """A line of another format version is refused, naming it."""
    with pytest.raises(ValueError, match="version"):
        Recorded.parse(json.dumps({"v": 99}))


def test_spacing_recorded_gaps_divided_by_speed() -> None:
    """At 10x, a 5 s gap becomes 0.5 s; the first request goes at once."""
    items = [
        Recorded(AT + timedelta(seconds=s), "activity", "/api/messages", 201, {}) for s in (0, 5, 6)
    ]
    assert [wait for wait, _ in spacing(items, 10.0)] == [0.0, 0.5, 0.1]


def test_request_of_webhook_signed_afresh_keeps_webhook_id() -> None:
    """A webhook is signed with the running instance's secret, now, under its recorded id."""
    recorded = Recorded(
        AT, "sentinel", "/api/webhooks/sentinel", 202, {"x": 1}, {"webhook-id": "m1"}
    )
    body, headers = request_of(recorded, Target("http://w", sentinel_secret=SECRET))
    assert WebhookVerifier([SECRET]).verify(body, headers) == "m1"


def test_request_of_activity_service_url_rewritten() -> None:
    """An activity is sent to the given Bot Connector, with no Authorization header."""
    recorded = Recorded(AT, "activity", "/api/messages", 201, {"serviceUrl": "http://old/"})
    body, headers = request_of(recorded, Target("http://w", service_url="http://new/"))
    assert json.loads(body)["serviceUrl"] == "http://new/"
    assert "authorization" not in {name.lower() for name in headers}


def test_check_activities_with_app_id_refused_clearly() -> None:
    """With an app id, replaying activities is refused with the reason."""
    recorded = [Recorded(AT, "activity", "/api/messages", 201, {})]
    with pytest.raises(ReplayRefused, match="MICROSOFT_APP_ID"):
        check(recorded, Target("http://w", app_id="00000000-0000-0000-0000-000000000001"))


def test_check_webhook_without_secret_refused() -> None:
    """A recorded Sentinel webhook needs this instance's secret to be sent."""
    recorded = [Recorded(AT, "sentinel", "/api/webhooks/sentinel", 202, {})]
    with pytest.raises(ReplayRefused, match="SENTINEL_WEBHOOK_SECRETS"):
        check(recorded, Target("http://w"))


@pytest.mark.parametrize(("text", "speed"), [("10x", 10.0), ("2.5", 2.5), ("max", float("inf"))])
def test_parse_speed_forms_read(text: str, speed: float) -> None:
    """``10x``, a plain number and ``max`` are speeds."""
    assert parse_speed(text) == speed


def test_parse_speed_zero_refused() -> None:
    """A speed of zero is refused."""
    with pytest.raises(typer.BadParameter):
        parse_speed("0x")


def test_sign_helper_matches_verifier() -> None:
    """The signing the replay uses is the one Warden verifies (a sanity check of the pair)."""
    headers = sign(SECRET, b"{}", msg_id="m2")
    assert WebhookVerifier([SECRET]).verify(b"{}", headers) == "m2"
