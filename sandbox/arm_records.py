"""Records and error envelopes of the ARM sandbox: the request log and the three error shapes.

Three services share the sandbox and each answers errors in its own wire format:

* ARM / Sentinel: ``CloudError`` ``{"error": {"code", "message"}}``
* Microsoft Graph: ``{"error": {"code", "message", "innerError": {date, request-id,
  client-request-id}}}``
* Entra ID token endpoint: ``{"error", "error_description", "error_codes", "timestamp",
  "trace_id", "correlation_id", "error_uri"}`` (OAuth 2.0 with Microsoft's extras)

No record ever holds a credential: of the Authorization header only its presence and
scheme are kept, of a verified token only its ``appid``; token request bodies keep
``grant_type``, ``client_id`` and ``scope`` and never ``client_secret``.
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

Service = Literal["arm", "graph", "login"]
"""Which of the sandbox's services a request went to."""

SERVICES: tuple[Service, ...] = ("arm", "graph", "login")
"""Every service, in routing order."""

_EMAIL_SEGMENT = re.compile(r"[^/]*@[^/]*")


@dataclass
class RequestRecord:
    """One request as the sandbox saw and answered it.

    ``path`` is decoded, ``raw_path`` as sent. ``status`` is None when the connection was
    dropped on purpose. ``fault`` names what the sandbox injected: delay, drop, status, down.
    ``app_id`` is the ``appid`` claim of a bearer token the sandbox verified.
    """

    time: float
    service: Service
    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    operation: str
    incident_id: str | None
    child_id: str | None
    body: Any
    auth_present: bool
    auth_scheme: str | None
    traceparent: str | None
    client_request_id: str | None
    app_id: str | None = None
    status: int | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """True when the sandbox answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form used by ``GET /_sandbox/requests``."""
        return {
            "time": self.time,
            "service": self.service,
            "method": self.method,
            "path": self.path,
            "rawPath": self.raw_path,
            "query": self.query,
            "operation": self.operation,
            "incidentId": self.incident_id,
            "childId": self.child_id,
            "body": self.body,
            "authorization": {"present": self.auth_present, "scheme": self.auth_scheme},
            "appId": self.app_id,
            "traceparent": self.traceparent,
            "clientRequestId": self.client_request_id,
            "status": self.status,
            "fault": self.fault,
        }

    def summary(self) -> str:
        """Return a one-line description without bodies or e-mail-like path segments."""
        path = _EMAIL_SEGMENT.sub("<redacted>", self.path)
        return f"{self.service} {self.method} {path} -> {self.status} ({self.operation})"


class SandboxError(Exception):
    """An error answer in one service's envelope; raised by handlers, answered by middleware."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Describe the answer: HTTP status, error code, message and extra headers."""
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}

    def to_response(self) -> web.Response:
        """Return the error answer."""
        return web.json_response(self.body(), status=self.status, headers=self.headers)


class ArmError(SandboxError):
    """An ARM ``CloudError`` answer."""


class GraphError(SandboxError):
    """A Microsoft Graph OData error answer (with ``innerError``)."""

    def body(self) -> dict[str, Any]:
        """Return the Graph error body with its ``innerError`` block."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": _utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": self.headers.get("request-id", str(uuid.uuid4())),
                    "client-request-id": self.headers.get("client-request-id", str(uuid.uuid4())),
                },
            }
        }


class AadError(SandboxError):
    """An Entra ID token endpoint error: ``code`` is the OAuth error, plus an AADSTS number."""

    def __init__(
        self,
        status: int,
        error: str,
        aadsts: int | None,
        description: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer; ``aadsts`` is the AADSTS error number (None for none)."""
        super().__init__(status, error, description, headers)
        self.aadsts = aadsts

    def body(self) -> dict[str, Any]:
        """Return the token endpoint's error JSON, with trace and correlation ids."""
        now = _utc_now()
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        prefix = f"AADSTS{self.aadsts}: " if self.aadsts is not None else ""
        description = (
            f"{prefix}{self.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
        )
        body: dict[str, Any] = {
            "error": self.code,
            "error_description": description,
            "error_codes": [self.aadsts] if self.aadsts is not None else [],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }
        if self.aadsts is not None:
            body["error_uri"] = f"https://login.microsoftonline.com/error?code={self.aadsts}"
        return body


def _utc_now() -> datetime.datetime:
    """Return the current UTC time."""
    return datetime.datetime.now(datetime.timezone.utc)


def auth_fields(header: str | None) -> tuple[bool, str | None]:
    """Return (present, scheme) of an Authorization header, dropping the credential."""
    if not header or not header.strip():
        return False, None
    return True, header.strip().split(" ", 1)[0]


_ARM_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "SubscriptionRequestsThrottled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_GRAPH_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "serviceNotAvailable",
    504: "UnknownError",
}


def fault_error(
    service: Service, status: int, code: str | None, message: str | None
) -> SandboxError:
    """Return the error a fault with this status answers, in the service's envelope."""
    text = message or "Fault injected by the ARM sandbox."
    if service == "graph":
        return GraphError(status, code or _GRAPH_CODES.get(status, "generalException"), text)
    if service == "login":
        error = code or ("temporarily_unavailable" if status in (429, 503) else "server_error")
        return AadError(status, error, None, text)
    fallback = "InternalServerError" if status >= 500 else "BadRequest"
    return ArmError(status, code or _ARM_CODES.get(status, fallback), text)


def status_error(service: Service, status: int, reason: str) -> SandboxError:
    """Return the error for an aiohttp HTTPException (404/405/413...) in the service's envelope."""
    return fault_error(service, status, None, reason)
