"""The edge of the ServiceNow sandbox: request log entries, the error envelope, the middleware.

For each request to ``/api/`` or ``/oauth_token.do``, in this order: describe it for the
log (never a password, token or secret), reset the connection when the sandbox is down,
wait when it is slow, answer a queued failure, apply the rate-limit rule (API only),
authenticate (API only: Basic or a Bearer token from ``/oauth_token.do``), run the route,
and check the answer against the contract. Errors are ServiceNow's envelope
``{"error": {"message", "detail"}, "status": "failure"}``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.connector_faults import retry_after_header
from sandbox.itsm_http import auth_scheme, basic_matches, logged_body, reset_when_down

if TYPE_CHECKING:
    from sandbox.servicenow import ServiceNowSandbox

USER_KEY = web.RequestKey("servicenow_user", str)
"""The user name an API request authenticated as."""


@dataclass
class ServiceNowRequest:
    """One request as the sandbox saw and answered it (no credentials, ever).

    ``status`` is None when the connection was reset on purpose; ``fault`` names what the
    sandbox injected (down, slow, failure, rate_limit); ``user`` is who authenticated.
    """

    time: float
    method: str
    path: str
    query: dict[str, str]
    operation: str
    table: str | None
    sys_id: str | None
    body: Any
    auth_scheme: str | None
    user: str | None = None
    status: int | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """True when the sandbox answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def summary(self) -> str:
        """Return one line: method, path, status and operation."""
        return f"servicenow {self.method} {self.path} -> {self.status} ({self.operation})"


class ServiceNowError(Exception):
    """An error answer in the Table API envelope; raised by handlers, answered by middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer: status, the envelope's message and detail, extra headers."""
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON error envelope."""
        return {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}

    def to_response(self) -> web.Response:
        """Return the error answer."""
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def unauthenticated() -> ServiceNowError:
    """Return the 401 an instance gives without valid credentials."""
    return ServiceNowError(
        401,
        "User Not Authenticated",
        "Required to provide Auth information",
        {"WWW-Authenticate": 'BASIC realm="Service-now"'},
    )


def _operation(method: str, path: str) -> tuple[str, str | None, str | None]:
    """Return the operation id, table and sys_id a path addresses."""
    if path == "/oauth_token.do":
        return "oauth_token", None, None
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "now"]:
        return "Unknown", None, None
    if len(parts) > 2 and parts[2].startswith("v") and parts[2][1:].isdigit():
        parts = parts[:2] + parts[3:]
    if len(parts) == 4 and parts[2] == "table":
        return {"GET": "table_List", "POST": "table_Create"}.get(method, "Unknown"), parts[3], None
    if len(parts) == 5 and parts[2] == "table":
        names = {"GET": "table_Get", "PATCH": "table_Patch", "PUT": "table_Put"}
        operation = names.get(method, "table_Delete" if method == "DELETE" else "Unknown")
        return operation, parts[3], parts[4]
    return "Unknown", None, None


async def _new_record(request: web.Request) -> ServiceNowRequest:
    """Describe a request for the log: the JSON body of API calls, no form bodies."""
    operation, table, sys_id = _operation(request.method, request.path)
    return ServiceNowRequest(
        time=time.time(),
        method=request.method,
        path=request.path,
        query=dict(request.query),
        operation=operation,
        table=table,
        sys_id=sys_id,
        body=await logged_body(request, "/api/"),
        auth_scheme=auth_scheme(request),
    )


def authenticate(sandbox: ServiceNowSandbox, header: str) -> str:
    """Return the user a Basic or Bearer Authorization header proves, or raise 401."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        if basic_matches(credentials, sandbox.username, sandbox.password):
            return sandbox.username
        raise unauthenticated()
    if scheme.lower() == "bearer":
        token = sandbox.tokens.get(credentials.strip())
        if token is not None and token.expires_at > sandbox.clock():
            return token.user
    raise unauthenticated()


async def _answer(
    sandbox: ServiceNowSandbox, request: web.Request, handler: Handler, record: ServiceNowRequest
) -> web.StreamResponse:
    """Apply the faults, the rate limit and authentication, then run the route."""
    if sandbox.slow_seconds > 0:
        record.fault = "slow"
        await asyncio.sleep(sandbox.slow_seconds)
    failure = sandbox.take_failure()
    if failure is not None:
        record.fault = "failure"
        headers = retry_after_header(failure.retry_after)
        if failure.body is not None:
            return web.json_response(failure.body, status=failure.status, headers=headers)
        message = "Service Unavailable" if failure.status == 503 else "Injected failure"
        raise ServiceNowError(failure.status, message, "sandbox fail_next", headers)
    if not request.path.startswith("/api/"):
        return await handler(request)
    limit_headers: dict[str, str] = {}
    if sandbox.rate_rule is not None:
        allowed, limit_headers = sandbox.rate_rule.admit(sandbox.clock())
        if not allowed:
            record.fault = "rate_limit"
            raise ServiceNowError(
                429,
                "Rate limit exceeded",
                f"Rate limit rule allows {sandbox.rate_rule.limit} requests per window",
                limit_headers,
            )
    record.user = request[USER_KEY] = authenticate(
        sandbox, request.headers.get("Authorization", "")
    )
    response = await handler(request)
    response.headers.update(limit_headers)
    return response


def servicenow_middleware(sandbox: ServiceNowSandbox) -> Middleware:
    """Return the middleware that logs, faults, limits and authenticates every call."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; API and token calls end up in the sandbox log."""
        if not (request.path.startswith("/api/") or request.path == "/oauth_token.do"):
            return await handler(request)
        record = await _new_record(request)
        if sandbox.is_down:
            return reset_when_down(request, record, sandbox.log_request)
        try:
            response = await _answer(sandbox, request, handler, record)
        except ServiceNowError as err:
            response = err.to_response()
            if record.operation.startswith("table_"):
                sandbox.check_answer(record.operation, err.status, err.body())
        record.status = response.status
        sandbox.log_request(record)
        return response

    return middleware
