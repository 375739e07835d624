"""Recorded inbound traffic: one JSON line per accepted webhook or Teams activity.

A line is ``{"v": 1, "at": <UTC ISO time>, "kind": "activity" | "sentinel" | "servicenow",
"path": <route>, "status": <Warden's answer>, "headers": {...}, "body": <redacted JSON>}``.
Only the headers a replay needs are kept (``webhook-id``, the key that makes a webhook
idempotent); never ``Authorization`` nor a signature: a replay signs afresh.

Redaction uses the logs' scrubber (:data:`core.logs.SCRUBBER`): secret-named fields are
``[REDACTED]``, tokens, signatures, e-mail addresses and IP addresses are scrubbed or become
the same pseudonyms the logs show. Structure and ids stay, so a replay drives the same
behaviour; personal text (people's names, free-text inputs, a message that is not a command
to Warden) becomes a stable pseudonym (``text:<hash>``), the same text always the same one.
See ``docs/adr/0008-recording-and-replay.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from core.logs import REDACTED, SCRUBBER, Scrubber, is_secret_key

Kind = Literal["activity", "sentinel", "servicenow"]
FORMAT_VERSION = 1
ROUTES: dict[str, Kind] = {
    "/api/messages": "activity",
    "/api/webhooks/sentinel": "sentinel",
    "/api/webhooks/servicenow": "servicenow",
}
"""The inbound routes that are recorded, and the kind of their lines."""

KEPT_HEADERS = ("webhook-id",)
"""Request headers a recording keeps: the idempotency key, nothing that authenticates."""

PERSONAL_KEYS: dict[Kind, frozenset[str]] = {
    "activity": frozenset({"comment", "attestation", "reason", "givenName", "surname"}),
    "sentinel": frozenset({"description", "assignedTo", "message"}),
    "servicenow": frozenset({"description", "comments", "work_notes", "close_notes"}),
}
"""Free-text fields, per kind, that become pseudonyms (their structure stays)."""

_MENTION = re.compile(r"<at>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Recorded:
    """One recorded inbound request."""

    at: datetime
    kind: Kind
    path: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """The request as one JSON line (no trailing newline)."""
        stamp = self.at.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        return json.dumps(
            {
                "v": FORMAT_VERSION,
                "at": stamp.replace("+00:00", "Z"),
                "kind": self.kind,
                "path": self.path,
                "status": self.status,
                "headers": self.headers,
                "body": self.body,
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, line: str) -> Recorded:
        """A recorded request from its line; ``ValueError`` naming what is wrong."""
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} recording line")
        if data.get("kind") not in ("activity", "sentinel", "servicenow"):
            raise ValueError(f"unknown kind {data.get('kind')!r}")
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        return cls(
            at=at,
            kind=data["kind"],
            path=str(data["path"]),
            status=int(data["status"]),
            body=data["body"],
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        )


def read_recording(path: Path) -> list[Recorded]:
    """Every request recorded in ``path`` in order; ``ValueError`` naming the bad line."""
    recorded = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            recorded.append(Recorded.parse(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return recorded


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a recording keeps (see :data:`KEPT_HEADERS`)."""
    return {name: headers[name] for name in KEPT_HEADERS if headers.get(name)}


class Redactor:
    """Redacts recorded bodies; ``commands`` are the first words of Warden's commands."""

    def __init__(self, commands: Iterable[str] = (), scrubber: Scrubber | None = None) -> None:
        self._commands = frozenset(word.lower() for word in commands)
        self._scrubber = scrubber or SCRUBBER

    def redact(self, kind: Kind, body: Any) -> Any:
        """A JSON-ready copy of ``body`` with secrets and personal data removed."""
        if kind == "activity" and isinstance(body, dict):
            return self._activity(body)
        return self._walk(body, "", PERSONAL_KEYS[kind])

    def pseudonym(self, text: str) -> str:
        """The stand-in of a piece of personal text: ``text:<hash>``, stable per text."""
        return self._scrubber.pseudonym(text, "text") if text else text

    def _activity(self, activity: dict[str, Any]) -> Any:
        bot_name = str((activity.get("recipient") or {}).get("name") or "")
        walked = self._walk(activity, "", PERSONAL_KEYS["activity"], names=True)
        text = activity.get("text")
        if isinstance(text, str):
            walked["text"] = self._message_text(text, bot_name)
        for entity in walked.get("entities") or []:
            if isinstance(entity, dict) and isinstance(entity.get("text"), str):
                entity["text"] = self._mentions(entity["text"], bot_name)
        return walked

    def _message_text(self, text: str, bot_name: str) -> str:
        """A command to Warden keeps its words (scrubbed); other text becomes a pseudonym."""
        words = _TAG.sub(" ", _MENTION.sub(" ", text)).split()
        if words and words[0].lower() in self._commands:
            return self._scrubber.scrub(self._mentions(text, bot_name))
        return self.pseudonym(text)

    def _mentions(self, text: str, bot_name: str) -> str:
        """``<at>Name</at>`` markup with every name but the bot's as a pseudonym."""

        def name(match: re.Match[str]) -> str:
            who = match.group(1)
            return match.group(0) if who == bot_name else f"<at>{self.pseudonym(who)}</at>"

        return _MENTION.sub(name, text)

    def _walk(self, value: Any, key: str, personal: frozenset[str], *, names: bool = False) -> Any:
        if isinstance(value, bool | int | float) or value is None:
            return value
        if key and is_secret_key(key):
            return REDACTED
        if isinstance(value, str):
            return self.pseudonym(value) if key in personal else self._scrubber.scrub(value)
        if isinstance(value, Mapping):
            person = names and "aadObjectId" in value  # a Teams user: their name is personal
            return {
                str(k): (
                    self.pseudonym(v)
                    if person and k == "name" and isinstance(v, str)
                    else self._walk(v, str(k), personal, names=names)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(item, "", personal, names=names) for item in value]
        return self._scrubber.scrub(str(value))


def recording_file(directory: Path, at: datetime) -> Path:
    """The file of the day ``at`` falls in (UTC): ``<directory>/inbound-YYYY-MM-DD.jsonl``."""
    return directory / f"inbound-{at.astimezone(timezone.utc):%Y-%m-%d}.jsonl"


def spacing(recorded: list[Recorded], speed: float) -> Iterator[tuple[float, Recorded]]:
    """Each request with the seconds to wait before sending it: recorded gaps over ``speed``."""
    previous: datetime | None = None
    for item in recorded:
        gap = 0.0 if previous is None else (item.at - previous).total_seconds()
        previous = item.at
        yield max(gap, 0.0) / speed, item
