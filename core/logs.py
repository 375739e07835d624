"""Structured, scrubbed logs: one JSON object per line, correlated by request.

``configure_logging`` installs one root handler whose formatter writes ``ts``, ``level``,
``logger``, ``msg``, ``correlation_id``, the record's ``extra`` fields and ``exc``. Every
string that reaches a line (message, arguments, extras, tracebacks) first passes through a
``Scrubber``: tokens, signatures, webhook secrets, passwords and registered secret values are
redacted; e-mail addresses, UPNs and IP addresses become stable pseudonyms
(``user:<sha256[:12]>``), so one person is correlatable across lines without being named.

The HTTP edge (``web/edge.py``) gives each request a correlation id (taken from the caller when
valid), echoes it as ``x-correlation-id`` and writes one access line per request;
``log_outbound`` writes one line per outbound call.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

CORRELATION_HEADER = "x-correlation-id"
REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 8
"""Registered secrets shorter than this are ignored (they would redact ordinary words)."""
MIN_SENSITIVE_CHARS = 6
"""Shortest per-request sensitive value (``mark_sensitive``) that is redacted."""

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")
"""The correlation id of the work in progress (a request, a job); empty when none."""

_SENSITIVE: ContextVar[tuple[str, ...]] = ContextVar("log_sensitive", default=())

_HEADER_VALUE = re.compile(
    r"(?i)(?P<key>\b(?:proxy-)?authorization|\b(?:set-)?cookie|\bx-api-key"
    r"|\bocp-apim-subscription-key|[\w-]*signature)"
    r"(?P<sep>[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\"'\r\n]+)"
)
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|client[_-]?state"
    r"|assertion|code_verifier|\bsig))(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'&,;}\]]+)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+):[^\s/@]+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){2,4}")
_WHSEC = re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+")
_WEBHOOK_SIGNATURE = re.compile(r"\bv1a?,[A-Za-z0-9+/=_-]{16,}")
_EMAIL = re.compile(
    r"(?<![\w.%+#'-])[\w.%+#'-]+(?:@|%40)(?!(?:thread|unq\.gbl)\.)"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IPV4 = re.compile(
    r"(?<![\d.])(?!127\.|0\.0\.0\.0)(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_.-])(?:password|passwd|pwd|secret|token|authorization|cookie|signature|sig"
    r"|api[_-]?key|client[_-]?state|clientstate|assertion|credentials?)s?$"
)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_TEXT_KEYS = frozenset({"text", "body", "message_text", "content", "activity_text"})
_CORRELATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_TRACEPARENT = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
)
_MAX_PATH = 512


class Scrubber:
    """Removes secrets and personal data from text before it is written anywhere.

    ``pepper`` (settable, e.g. from a secret setting) keys the pseudonym hash (HMAC-SHA256),
    so that a pseudonym cannot be reversed by hashing a list of addresses or all IPv4s.
    """

    def __init__(self, *, pepper: bytes = b"") -> None:
        self.pepper = pepper
        self._secrets: frozenset[str] = frozenset()
        self._secret_pattern: re.Pattern[str] | None = None

    def register_secret(self, value: str | SecretStr | SecretBytes | None) -> None:
        """Redact ``value`` (and its URL-encoded and ``whsec_``-less forms) from now on."""
        value = value if isinstance(value, str) else next(iter(_secret_values(value)), "")
        if len(value) < MIN_SECRET_CHARS:
            return
        encoded = quote(value, safe="")
        forms = {value, encoded, encoded.replace("~", "%7E"), quote_plus(value)}
        forms.add(value.removeprefix("whsec_"))
        added = self._secrets | {form for form in forms if len(form) >= MIN_SECRET_CHARS}
        ordered = sorted(added, key=len, reverse=True)
        self._secret_pattern = re.compile("|".join(re.escape(form) for form in ordered))
        self._secrets = added

    def register_settings(self, settings: BaseModel) -> int:
        """Register every ``SecretStr``/``SecretBytes`` in ``settings`` (nested too) and the
        password of any URL setting; returns how many values were found."""
        found = list(_secret_values(settings))
        for value in found:
            self.register_secret(value)
        return len(found)

    def pseudonym(self, value: str, kind: str = "user") -> str:
        """A stable short stand-in for ``value``: ``<kind>:<sha256[:12]>``."""
        normal = value.strip().lower().replace("%40", "@").encode()
        if self.pepper:
            digest = hmac.new(self.pepper, normal, hashlib.sha256).hexdigest()
        else:
            digest = hashlib.sha256(normal).hexdigest()
        return f"{kind}:{digest[:12]}"

    def scrub(self, text: str) -> str:
        """``text`` with every secret redacted and every address pseudonymised."""
        if self._secret_pattern is not None:
            text = self._secret_pattern.sub(REDACTED, text)
        for value in _SENSITIVE.get():
            text = text.replace(value, REDACTED)
        text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
        text = _HEADER_VALUE.sub(_redact_value, text)
        text = _KEY_VALUE.sub(_redact_value, text)
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
        text = _JWT.sub(REDACTED, text)
        text = _WHSEC.sub(f"whsec_{REDACTED}", text)
        text = _WEBHOOK_SIGNATURE.sub(f"v1,{REDACTED}", text)
        text = _EMAIL.sub(lambda m: self.pseudonym(m.group(0)), text)
        return _IPV4.sub(lambda m: self.pseudonym(m.group(0), "ip"), text)

    def scrub_value(self, value: Any, key: str = "") -> Any:
        """A JSON-ready copy of ``value`` with strings scrubbed and secret-named keys redacted."""
        if isinstance(value, bool | int | float) or value is None:
            return value
        if key and (is_secret_key(key) or key.lower() in _TEXT_KEYS):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {str(k): self.scrub_value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub_value(item) for item in value]
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        return self.scrub(repr(value))


def is_secret_key(name: str) -> bool:
    """True when a field called ``name`` holds a secret (password, token, signature…),
    in snake_case, kebab-case or camelCase (``clientSecret``, ``accessToken``)."""
    return bool(_SECRET_KEY.search(_CAMEL_HUMP.sub("_", name)))


def _redact_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote_char = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{match.group('sep')}{quote_char}{REDACTED}{quote_char}"


def _secret_values(value: Any) -> Iterable[str]:
    if isinstance(value, str) and "://" in value:
        with contextlib.suppress(ValueError):  # a password inside a URL setting
            yield from [unquote(p) for p in [urlsplit(value).password] if p]
    elif isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, SecretBytes):
        yield value.get_secret_value().decode("utf-8", "replace")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)


SCRUBBER = Scrubber()
"""The process's scrubber: ``create_app`` registers the settings' secrets on it."""


def mark_sensitive(*values: str | None) -> None:
    """Redact ``values`` (e.g. a message's text, a user's name) from lines of this context.

    The mark lives in the current ``contextvars`` context: for a request, until it ends.
    """
    kept = tuple(v for v in values if v and len(v) >= MIN_SENSITIVE_CHARS)
    if kept:
        merged = set(_SENSITIVE.get()) | set(kept)
        _SENSITIVE.set(tuple(sorted(merged, key=len, reverse=True)))


def fresh_correlation_id() -> str:
    """A new correlation id: 128 random bits as 32 hex digits.

    Not ``uuid4``: its ``os.urandom`` lets go of the GIL, and taking it back behind a busy
    store thread costs a click up to a switch interval (5 ms). A correlation id is a label,
    not a secret, so the ``random`` module (reseeded after a fork) is enough.
    """
    return f"{random.getrandbits(128):032x}"


def new_correlation_id() -> str:
    """Start a new correlation id for the current context and return it."""
    value = fresh_correlation_id()
    correlation_id.set(value)
    return value


def inbound_correlation_id(headers: Mapping[str, str]) -> str | None:
    """The caller's correlation id when it sent a valid one (``x-correlation-id``,
    ``x-ms-correlation-request-id``, or the trace id of a W3C ``traceparent``)."""
    for name in (CORRELATION_HEADER, "x-ms-correlation-request-id"):
        candidate = headers.get(name, "").strip()
        if candidate and _CORRELATION.fullmatch(candidate):
            return candidate
    parent = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    return parent.group(1) if parent else None


# Fields of every LogRecord; anything else on a record came from ``extra=``.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "correlation_id",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one scrubbed JSON object on one line."""

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or SCRUBBER

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as scrubbed, JSON-ready fields."""
        moment = datetime.fromtimestamp(record.created, timezone.utc)
        fields: dict[str, Any] = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None) or correlation_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                fields[key if key not in fields else f"extra_{key}"] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        scrubbed: dict[str, Any] = self.scrubber.scrub_value(fields)
        scrubbed["correlation_id"] = scrubbed["correlation_id"] or None
        return scrubbed

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON (ASCII: no character a reader could take for a line break)."""
        return json.dumps(self.fields(record), default=str)


class TextFormatter(JsonFormatter):
    """The same scrubbed fields as plain text, for a developer's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """``ts level logger [correlation] msg key=value…`` and the traceback, if any."""
        fields = self.fields(record)
        head = [fields.pop(k) for k in ("ts", "level", "logger")]
        cid, msg, exc = fields.pop("correlation_id"), fields.pop("msg"), fields.pop("exc", "")
        extras = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        line = " ".join(str(p) for p in [*head, f"[{cid or '-'}]", msg, extras] if p)
        return f"{line}\n{exc}" if exc else line


class _WardenHandler(logging.StreamHandler[IO[str]]):
    """The root handler ``configure_logging`` installs (and replaces when called again)."""


# Loggers pinned to WARNING at any level: aiohttp's access lines duplicate ours (with the raw
# address and query string); SQL echo and aiosqlite's DEBUG lines carry parameters and rows;
# httpx's and httpcore's repeat ``warden.outbound``'s call lines with full URLs and queries;
# the Azure SDK's log every request's headers and each token fetch at INFO.
_QUIET = ("aiohttp.access", "sqlalchemy.engine", "aiosqlite", "httpx", "httpcore", "azure")


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = True,
    stream: IO[str] | None = None,
    scrubber: Scrubber | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as scrubbed JSON (or text) lines.

    Idempotent: the handler installed by an earlier call is replaced, others are kept.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _WardenHandler)]:
        root.removeHandler(old)
    handler = _WardenHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(scrubber) if json else TextFormatter(scrubber))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    return handler


_outbound = logging.getLogger("warden.outbound")


def outcome_of(status: int) -> str:
    """The outcome word of an HTTP status in log lines."""
    if status == 499:
        return "cancelled"
    if status == 429:
        return "throttled"
    return "ok" if status < 400 else "client_error" if status < 500 else "server_error"


def log_outbound(
    service: str,
    method: str,
    host: str,
    path: str,
    status_or_error: int | str | BaseException,
    duration_ms: float,
    attempt: int = 1,
) -> None:
    """Write the one line of an outbound call: its target, outcome, duration and attempt.

    Give an HTTP status, or the exception (only its type is written) or a short error text.
    """
    extra: dict[str, Any] = {
        "event": "http.outbound",
        "service": service,
        "method": method.upper(),
        "host": host,
        "path": path.split("?", 1)[0][:_MAX_PATH],
        "duration_ms": round(duration_ms, 1),
        "attempt": attempt,
    }
    if isinstance(status_or_error, int):
        extra.update(status=status_or_error, outcome=outcome_of(status_or_error))
        level = logging.INFO if status_or_error < 400 else logging.WARNING
        result = str(status_or_error)
    else:
        error = status_or_error
        text = type(error).__name__ if isinstance(error, BaseException) else error
        extra.update(error=text, outcome="error")
        level, result = logging.WARNING, text
    target = f"{service} {extra['method']} {host}{extra['path']}"
    _outbound.log(level, "%s -> %s", target, result, extra=extra)
