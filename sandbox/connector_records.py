"""Plain records kept by the Connector sandbox: the request log, stored activities, ids.

No record ever holds a credential: for the Authorization header only its presence
and scheme are kept.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

SANDBOX_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
"""Tenant id the sandbox puts on its fake Teams members."""


@dataclass
class RequestRecord:
    """One Connector API request as the sandbox saw and answered it.

    ``path`` is decoded, ``raw_path`` exactly as sent (percent-encoded).
    ``status`` is None when the connection was dropped on purpose (before or after the work).
    ``activity_id`` is the id in the URL; ``result_id`` the id the answer returned.
    ``fault`` names what the sandbox injected: delay, late (answered after a delay, the work
    done), drop, cut (the work done, the connection then closed unanswered), status, down,
    rate_limit.
    """

    time: float
    method: str
    path: str
    raw_path: str
    operation: str
    conversation_id: str | None
    activity_id: str | None
    body: Any
    auth_present: bool
    auth_scheme: str | None
    traceparent: str | None
    status: int | None = None
    result_id: str | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """True when the sandbox answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form used by ``GET /_sandbox/requests``."""
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "rawPath": self.raw_path,
            "operation": self.operation,
            "conversationId": self.conversation_id,
            "activityId": self.activity_id,
            "body": self.body,
            "authorization": {"present": self.auth_present, "scheme": self.auth_scheme},
            "traceparent": self.traceparent,
            "status": self.status,
            "resultId": self.result_id,
            "fault": self.fault,
        }

    def summary(self) -> str:
        """Return a one-line description without bodies (safe to log)."""
        return f"{self.method} {self.path} -> {self.status} ({self.operation})"


def auth_fields(header: str | None) -> tuple[bool, str | None]:
    """Return (present, scheme) of an Authorization header, dropping the credential."""
    if not header or not header.strip():
        return False, None
    return True, header.strip().split(" ", 1)[0]


@dataclass
class StoredActivity:
    """An activity the bot posted, with its current body and how often it was written."""

    id: str
    conversation_id: str
    body: dict[str, Any]
    reply_to_id: str | None = None
    version: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)

    def replace(self, body: dict[str, Any]) -> None:
        """Keep the old body in ``history`` and make ``body`` current."""
        self.history.append(self.body)
        self.body = body
        self.version += 1

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form used by ``GET /_sandbox/conversations/{id}/activities``."""
        return {
            "id": self.id,
            "conversationId": self.conversation_id,
            "replyToId": self.reply_to_id,
            "version": self.version,
            "body": self.body,
        }


class ActivityIdFactory:
    """Makes Teams-like activity ids: unique, increasing 13-digit millisecond stamps."""

    def __init__(self) -> None:
        """Start with no id handed out."""
        self._last = 0
        self._lock = threading.Lock()

    def next_id(self) -> str:
        """Return a new id, never equal to an earlier one."""
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return str(self._last)


def personal_conversation_id() -> str:
    """Return a Teams-like 1:1 conversation id (``a:1...``)."""
    return "a:1" + secrets.token_urlsafe(32).replace("-", "").replace("_", "")[:40]


def group_conversation_id() -> str:
    """Return a Teams-like group chat id (``19:...@thread.v2``)."""
    return f"19:{uuid.uuid4().hex}@thread.v2"


def default_members() -> list[dict[str, Any]]:
    """Return two plausible Teams members (TeamsChannelAccount shape)."""
    people = [("Ada", "Lovelace"), ("Grace", "Hopper")]
    return [
        {
            "id": "29:1" + secrets.token_hex(20),
            "name": f"{given} {surname}",
            "aadObjectId": str(uuid.uuid4()),
            "givenName": given,
            "surname": surname,
            "email": f"{given.lower()}.{surname.lower()}@contoso.example",
            "userPrincipalName": f"{given.lower()}.{surname.lower()}@contoso.example",
            "tenantId": SANDBOX_TENANT_ID,
            "userRole": "user",
        }
        for given, surname in people
    ]


_DEFAULT_CODES = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    415: "BadArgument",
    429: "Throttled",
}


def default_error_code(status: int) -> str:
    """Return the Connector error code the sandbox uses for a status without a specific one."""
    return _DEFAULT_CODES.get(status, "ServiceError" if status >= 500 else "BadArgument")


def error_response(
    status: int,
    code: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Return an ErrorResponse ``{"error": {"code", "message"}}`` with this status."""
    body = {
        "error": {
            "code": code or default_error_code(status),
            "message": message or _reason(status),
        }
    }
    return web.json_response(body, status=status, headers=headers)


def _reason(status: int) -> str:
    """Return the standard reason phrase of a status, or a generic one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ConnectorError(Exception):
    """Raised by sandbox operations; becomes an ErrorResponse answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer: HTTP status, Connector error code, message, extra headers."""
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_response(self) -> web.Response:
        """Return the ErrorResponse answer for this error."""
        return error_response(self.status, self.code, self.message, self.headers)
