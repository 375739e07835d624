"""Structured logs: the JSON formatter, the scrubbing rules, correlation and access lines."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, SecretStr

from core.logs import (
    CORRELATION_HEADER,
    JsonFormatter,
    Scrubber,
    TextFormatter,
    configure_logging,
    correlation_id,
    inbound_correlation_id,
    log_outbound,
    mark_sensitive,
    new_correlation_id,
)
from tests.support import SECRET, make_settings
from web.edge import edge_middleware

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGVsZSJ9.c2lnbmF0dXJlLWJ5dGVz"
SIGNATURE = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
EMAIL = "Adele.Vance@contoso.com"
PASSWORD = "app-password-Zq8~x"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
QUIET = ("aiohttp.access", "aiosqlite", "sqlalchemy.engine", "azure")


@dataclass
class Capture:
    """Log lines written through ``configure_logging`` to memory."""

    stream: io.StringIO
    scrubber: Scrubber

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far, parsed."""
        return [json.loads(line) for line in self.stream.getvalue().split("\n") if line]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """JSON logs at DEBUG into memory, with a fresh scrubber; logging restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    stream, scrubber = io.StringIO(), Scrubber()
    configure_logging("DEBUG", stream=stream, scrubber=scrubber)
    yield Capture(stream, scrubber)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in quiet.items():
        logging.getLogger(name).setLevel(saved)


def _record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("warden.test", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_formatter_record_one_json_line_with_fields() -> None:
    """A record becomes one JSON object with ts, level, logger, msg, correlation id, extras."""
    line = JsonFormatter(Scrubber()).format(_record("job %s\nretried", 7, attempt=2))
    assert "\n" not in line
    fields = json.loads(line)
    assert datetime.fromisoformat(fields["ts"].replace("Z", "+00:00")).utcoffset() is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])
    assert (fields["level"], fields["logger"], fields["msg"]) == (
        "INFO",
        "warden.test",
        "job 7\nretried",
    )
    assert (fields["correlation_id"], fields["attempt"]) == (None, 2)


def test_json_formatter_inside_correlation_context_carries_id() -> None:
    """A line written while a correlation id is set carries that id."""

    def write() -> tuple[str, str]:
        value = new_correlation_id()
        return value, JsonFormatter(Scrubber()).format(_record("hello"))

    value, line = contextvars.copy_context().run(write)
    assert json.loads(line)["correlation_id"] == value
    assert correlation_id.get() == ""


def test_json_formatter_exception_written_as_scrubbed_exc() -> None:
    """A traceback is written in ``exc``, with the secrets in it redacted."""
    scrubber = Scrubber()
    scrubber.register_secret(PASSWORD)
    try:
        raise RuntimeError(f"login failed with {PASSWORD} for {EMAIL}")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    fields = json.loads(JsonFormatter(scrubber).format(record))
    assert "RuntimeError: login failed with [REDACTED] for user:" in fields["exc"]
    assert PASSWORD not in fields["exc"] and EMAIL not in fields["exc"]


def test_json_formatter_secret_in_dict_extra_redacted() -> None:
    """Registered secrets, secret-named and text-named keys are redacted in nested extras."""
    scrubber = Scrubber()
    scrubber.register_secret(SecretStr(PASSWORD))
    request = {"url": f"https://x/?p={PASSWORD}", "client_secret": "abc", "n": [EMAIL]}
    record = _record("call", request=request, text="hi there all")
    fields = json.loads(JsonFormatter(scrubber).format(record))
    assert fields["request"]["url"] == "https://x/?p=[REDACTED]"
    assert fields["request"]["n"] == [scrubber.pseudonym(EMAIL)]
    assert fields["request"]["client_secret"] == fields["text"] == "[REDACTED]"


def test_text_formatter_record_scrubbed_plain_line() -> None:
    """The text formatter writes the same scrubbed fields on one readable line."""
    line = TextFormatter(Scrubber()).format(_record("to %s", EMAIL, status=202))
    assert line.endswith("status=202")
    assert " INFO warden.test [-] to user:" in line
    assert EMAIL not in line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"Authorization: Bearer {JWT}", "Authorization: [REDACTED]"),
        ("{'authorization': 'Basic dXNlcjpwYXNz', 'host': 'h'}", "'authorization': '[REDACTED]'"),
        (f"sent Bearer {'a1' * 12} to x", "sent Bearer [REDACTED] to x"),
        (f"token {JWT} seen", "token [REDACTED] seen"),
        (
            f'{{"webhook-signature": "{SIGNATURE} {SIGNATURE}"}}',
            '"webhook-signature": "[REDACTED]"',
        ),
        (f"signed {SIGNATURE} ok", "signed v1,[REDACTED] ok"),
        (f"secret {SECRET} loaded", "secret whsec_[REDACTED] loaded"),
        ("grant_type=x&client_secret=s3cr3t!&scope=y", "&client_secret=[REDACTED]&scope=y"),
        ('{"password": "hunter22"}', '{"password": "[REDACTED]"}'),
        ("clientState=abc123 accepted", "clientState=[REDACTED] accepted"),
        ("postgresql://warden:pa55@db.example.com/w", "postgresql://warden:[REDACTED]@db"),
    ],
)
def test_scrubber_secret_patterns_redacted(raw: str, expected: str) -> None:
    """Tokens, JWTs, signatures, webhook secrets and password pairs are redacted."""
    assert expected in Scrubber().scrub(raw)


@pytest.mark.parametrize(
    "text",
    [
        "webhook refused: no matching signature",
        "outbox job 5 retry in 1.2s: retry: connector answered 429 (version 4.17.1)",
        "POST /v3/conversations/19:soc@thread.tacv2/activities -> 201",
        "loaded 3 signing keys from http://127.0.0.1:8080/keys",
    ],
)
def test_scrubber_ordinary_text_unchanged(text: str) -> None:
    """Operational text without secrets or people passes through unchanged."""
    assert Scrubber().scrub(text) == text


def test_scrubber_registered_secret_redacted_in_every_form() -> None:
    """A registered secret is redacted verbatim, URL-encoded and without ``whsec_``."""
    scrubber = Scrubber()
    scrubber.register_secret(PASSWORD)
    scrubber.register_secret(SECRET)
    text = scrubber.scrub(f"{PASSWORD} app-password-Zq8%7Ex {SECRET.removeprefix('whsec_')}")
    assert text == "[REDACTED] [REDACTED] [REDACTED]"


def test_scrubber_short_or_empty_secret_ignored() -> None:
    """An empty or very short value is not registered (it would redact ordinary words)."""
    scrubber = Scrubber()
    for value in ("", "abc", None):
        scrubber.register_secret(value)
    assert scrubber.scrub("abc def") == "abc def"


def test_scrubber_register_settings_every_secret_found() -> None:
    """Every SecretStr of the settings, and a password inside a URL setting, is registered."""

    class Nested(BaseModel):
        token: SecretStr

    class Config(BaseModel):
        keys: list[SecretStr]
        nested: Nested
        url: str

    scrubber = Scrubber()
    config = Config(
        keys=[SecretStr("first-key-123"), SecretStr("second-key-456")],
        nested=Nested(token=SecretStr("nested-token-789")),
        url="postgresql://u:db-p%40ss-000@h/d",
    )
    assert scrubber.register_settings(config) == 4
    text = scrubber.scrub("first-key-123 second-key-456 nested-token-789 db-p@ss-000")
    assert text == "[REDACTED] [REDACTED] [REDACTED] [REDACTED]"


def test_scrubber_warden_settings_secrets_registered(tmp_path: Path) -> None:
    """Warden's own settings: webhook secrets and the bot's app password are registered."""
    settings = make_settings(tmp_path, "sqlite://", microsoft_app_password=PASSWORD)
    scrubber = Scrubber()
    scrubber.register_settings(settings)
    assert scrubber.scrub(f"{SECRET} {PASSWORD}") == "[REDACTED] [REDACTED]"


def test_scrubber_email_same_person_same_pseudonym() -> None:
    """An address becomes ``user:<12 hex>``, the same however it is cased or encoded."""
    scrubber = Scrubber()
    names = scrubber.scrub(f"{EMAIL} adele.vance@contoso.com adele.vance%40contoso.com").split()
    assert len(set(names)) == 1
    assert re.fullmatch(r"user:[0-9a-f]{12}", names[0])


@pytest.mark.parametrize(
    "upn", ["adele@contoso.onmicrosoft.com", "adele_contoso.com#EXT#@fabrikam.onmicrosoft.com"]
)
def test_scrubber_upn_pseudonymised_whole(upn: str) -> None:
    """A UPN, a guest's (``#EXT#``) included, is pseudonymised whole."""
    assert re.fullmatch(r"owner user:[0-9a-f]{12} set", Scrubber().scrub(f"owner {upn} set"))


def test_scrubber_pepper_changes_pseudonym() -> None:
    """With a pepper the pseudonym is keyed, so a list of addresses cannot reverse it."""
    assert Scrubber(pepper=b"k").pseudonym(EMAIL) != Scrubber().pseudonym(EMAIL)


def test_scrubber_public_ip_pseudonymised_loopback_kept() -> None:
    """An IPv4 address is personal data and is pseudonymised; loopback is not."""
    text = Scrubber().scrub("from 203.0.113.7 via 127.0.0.1")
    assert re.fullmatch(r"from ip:[0-9a-f]{12} via 127\.0\.0\.1", text)


def test_mark_sensitive_within_context_redacted_outside_kept() -> None:
    """Values marked sensitive are redacted in lines of that context only."""
    scrubber = Scrubber()

    def turn() -> str:
        mark_sensitive("please close incident 42", "Adele Vance", "hi")
        return scrubber.scrub("text 'please close incident 42' from Adele Vance: hi")

    assert contextvars.copy_context().run(turn) == "text '[REDACTED]' from [REDACTED]: hi"
    assert scrubber.scrub("Adele Vance") == "Adele Vance"


def test_configure_logging_called_twice_one_handler(capture: Capture) -> None:
    """A second call replaces its own handler and keeps everyone else's."""
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    configure_logging("DEBUG", stream=capture.stream, scrubber=capture.scrubber)
    ours = [h for h in root.handlers if type(h).__name__ == "_WardenHandler"]
    assert len(ours) == 1 and other in root.handlers
    logging.getLogger("warden.test").info("once")
    assert [line["msg"] for line in capture.lines()] == ["once"]


def test_configure_logging_debug_row_data_loggers_stay_quiet(capture: Capture) -> None:
    """Even at DEBUG, SQL echo, aiosqlite, aiohttp's own access lines and the Azure SDK's
    request logs stay at WARNING."""
    for name in QUIET:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING


def test_configure_logging_unknown_level_refused() -> None:
    """A level name logging does not know is refused."""
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")


def test_inbound_correlation_id_valid_headers_taken() -> None:
    """The caller's id is taken from x-correlation-id, Azure's header or traceparent."""
    assert inbound_correlation_id({"x-correlation-id": "abc-123"}) == "abc-123"
    azure = {"x-ms-correlation-request-id": "6f1c1a3e-1234-4bcd-8abc-0123456789ab"}
    assert inbound_correlation_id(azure) == azure["x-ms-correlation-request-id"]
    parent = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    assert inbound_correlation_id(parent) == TRACE_ID


@pytest.mark.parametrize(
    "headers",
    [
        {"x-correlation-id": "has space"},
        {"x-correlation-id": "x" * 65},
        {"x-correlation-id": "a@b.com"},
        {"traceparent": f"ff-{TRACE_ID}-00f067aa0ba902b7-01"},
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},
        {"traceparent": "garbage"},
    ],
)
def test_inbound_correlation_id_invalid_ignored(headers: dict[str, str]) -> None:
    """Malformed, overlong or address-like ids are not taken."""
    assert inbound_correlation_id(headers) is None


async def _ok(request: web.Request) -> web.Response:
    logging.getLogger("warden.test").info("handled")
    return web.Response(text="ok")


async def _fail(request: web.Request) -> web.Response:
    raise web.HTTPNotFound() if request.path == "/missing" else RuntimeError("bug")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A small app behind the HTTP edge's middleware."""
    app = web.Application(middlewares=[edge_middleware()])
    app.router.add_get("/ok", _ok)
    app.router.add_get("/missing", _fail)
    app.router.add_get("/broken", _fail)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _access(capture: Capture) -> list[dict[str, Any]]:
    return [line for line in capture.lines() if line["logger"] == "warden.access"]


async def test_correlation_middleware_no_id_new_one_echoed_and_logged(
    client: TestClient[web.Request, web.Application], capture: Capture
) -> None:
    """Without a caller id, a new one is made, echoed, and on every line of the request."""
    response = await client.get("/ok?token=abc")
    cid = response.headers[CORRELATION_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    assert [line["correlation_id"] for line in capture.lines() if line["msg"] == "handled"] == [cid]
    (access,) = _access(capture)
    assert access["correlation_id"] == cid
    assert access["method"] == "GET" and access["path"] == "/ok" and access["status"] == 200
    assert access["outcome"] == "ok" and access["duration_ms"] >= 0
    assert access["remote"] is None or access["remote"].startswith("ip:")
    assert "token" not in json.dumps(access)


async def test_correlation_middleware_caller_id_kept(
    client: TestClient[web.Request, web.Application], capture: Capture
) -> None:
    """A valid caller id is used and echoed; a traceparent's trace id likewise."""
    response = await client.get("/ok", headers={"x-correlation-id": "caller-1"})
    assert response.headers[CORRELATION_HEADER] == "caller-1"
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = await client.get("/ok", headers={"traceparent": parent})
    assert response.headers[CORRELATION_HEADER] == TRACE_ID
    assert [line["correlation_id"] for line in _access(capture)] == ["caller-1", TRACE_ID]


@pytest.mark.parametrize(
    "case",
    [
        ("/missing", 404, "INFO", "/missing"),
        ("/broken", 500, "ERROR", "/broken"),
        ("/nowhere", 404, "INFO", None),
    ],
)
async def test_correlation_middleware_failed_request_one_line_with_status(
    client: TestClient[web.Request, web.Application], capture: Capture, case: tuple[Any, ...]
) -> None:
    """A raised HTTP error, a bug or no route: still one access line, the id echoed, and a
    problem+json answer (a bug's names the id to quote, and nothing of the bug)."""
    path, status, level, route = case
    response = await client.get(path)
    assert response.status == status
    (access,) = _access(capture)
    assert (access["status"], access["level"], access["route"]) == (status, level, route)
    assert response.headers[CORRELATION_HEADER] == access["correlation_id"]
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status
    if status == 500:
        assert body["correlation_id"] == access["correlation_id"]
        assert "bug" not in json.dumps(body)


def test_log_outbound_status_one_line(capture: Capture) -> None:
    """An outbound call is one line: service, method, host, path without query, outcome."""
    log_outbound("bot-connector", "post", "https://smba", "/v3/x?sig=abc", 201, 12.345, 2)
    (line,) = capture.lines()
    assert line["logger"] == "warden.outbound"
    assert line["path"] == "/v3/x" and line["status"] == 201 and line["outcome"] == "ok"
    assert line["method"] == "POST" and line["attempt"] == 2 and line["duration_ms"] == 12.3


def test_log_outbound_exception_only_type_written(capture: Capture) -> None:
    """A failed call writes the exception's type, never its message."""
    log_outbound("graph", "GET", "https://graph", "/v1.0/me", OSError(f"x {PASSWORD}"), 5.0)
    (line,) = capture.lines()
    assert line["error"] == "OSError" and line["outcome"] == "error"
    assert line["level"] == "WARNING" and PASSWORD not in capture.stream.getvalue()


def test_create_app_log_pepper_keys_pseudonyms(tmp_path: Path) -> None:
    """With WARDEN_LOG_PEPPER set, an e-mail's pseudonym is keyed (not plain SHA-256)."""
    from app import create_app
    from core.logs import SCRUBBER

    plain = Scrubber().pseudonym(EMAIL, "user")
    create_app(make_settings(tmp_path, "sqlite+aiosqlite://", log_pepper="pepper-for-tests-1"))
    try:
        peppered = SCRUBBER.pseudonym(EMAIL, "user")
        assert peppered != plain and peppered.startswith("user:")
    finally:
        SCRUBBER.pepper = b""


def test_scrub_value_camel_case_secret_keys_redacted() -> None:
    """``clientSecret`` and ``accessToken`` are redacted like ``client_secret``."""
    scrubbed = Scrubber().scrub_value(
        {"clientSecret": "abc", "accessToken": "def", "tokenType": "x"}
    )
    hidden = "[REDACTED]"
    assert scrubbed == {"clientSecret": hidden, "accessToken": hidden, "tokenType": "x"}
