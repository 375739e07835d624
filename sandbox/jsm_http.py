"""The edge of the JSM sandbox: request log entries, Jira's error envelope, the middleware.

For each request to ``/rest/`` or ``/oauth/token``, in this order: describe it for the log
(never a token or secret), reset the connection when the sandbox is down, answer a queued
failure, apply the rate limit (429 with ``Retry-After``, as Jira Cloud's cost-based limits
do), authenticate (REST only: Basic e-mail + API token, or a Bearer token from
``/oauth/token``), and run the route; for a path in ``lose_answers``, reset the connection
after the work is done (an answer lost on the way back). Errors are Jira's envelope
``{"errorMessages": [...], "errors": {...}}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.connector_faults import retry_after_header
from sandbox.itsm_http import auth_scheme, basic_matches, logged_body, reset_when_down

if TYPE_CHECKING:
    from sandbox.jsm import JsmSandbox

USER_KEY = web.RequestKey("jsm_user", str)
"""The account a REST request authenticated as."""


@dataclass
class JsmRequest:
    """One request as the sandbox saw and answered it (no credentials, ever)."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth_scheme: str | None
    user: str | None = None
    status: int | None = None
    fault: str | None = None

    def summary(self) -> str:
        """Return one line: method, path and status."""
        return f"jsm {self.method} {self.path} -> {self.status}"


class JiraError(Exception):
    """An error answer in Jira's envelope; raised by handlers, answered by the middleware."""

    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer: status, ``errorMessages``, ``errors`` and extra headers."""
        super().__init__(f"{status} {messages or errors}")
        self.status = status
        self.messages = list(messages or [])
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        """Return the error answer."""
        body = {"errorMessages": self.messages, "errors": self.errors}
        return web.json_response(body, status=self.status, headers=self.headers)


def authenticate(sandbox: JsmSandbox, header: str) -> str:
    """The account a Basic or Bearer ``Authorization`` header proves; 401 otherwise."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        if basic_matches(credentials, sandbox.email, sandbox.api_token):
            return sandbox.email
    elif scheme.lower() == "bearer":
        expires = sandbox.tokens.get(credentials.strip())
        if expires is not None and expires > sandbox.clock():
            return f"app:{sandbox.client_id}"
    raise JiraError(
        401,
        ["You are not authenticated. Authentication required to perform this operation."],
        headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
    )


async def _describe(request: web.Request) -> JsmRequest:
    """The log entry of a request: its JSON body for REST calls, no form bodies."""
    return JsmRequest(
        time=time.time(),
        method=request.method,
        path=request.path,
        query=dict(request.query),
        body=await logged_body(request, "/rest/"),
        auth_scheme=auth_scheme(request),
    )


async def _answer(
    sandbox: JsmSandbox, request: web.Request, handler: Handler, entry: JsmRequest
) -> web.StreamResponse:
    """Apply the faults, the rate limit and authentication, then run the route."""
    failure = sandbox.take_failure()
    if failure is not None:
        entry.fault = "failure"
        headers = retry_after_header(failure.retry_after)
        raise JiraError(failure.status, ["Injected failure (sandbox fail_next)."], headers=headers)
    if not request.path.startswith("/rest/"):
        return await handler(request)
    if sandbox.rate_rule is not None:
        allowed, headers = sandbox.rate_rule.admit(sandbox.clock())
        if not allowed:
            entry.fault = "rate_limit"
            raise JiraError(429, ["Rate limit exceeded."], headers=headers)
    entry.user = request[USER_KEY] = authenticate(sandbox, request.headers.get("Authorization", ""))
    return await handler(request)


def jsm_middleware(sandbox: JsmSandbox) -> Middleware:
    """The middleware that logs, faults, limits and authenticates every call."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; REST and token calls end up in the sandbox log."""
        if not (request.path.startswith("/rest/") or request.path == "/oauth/token"):
            return await handler(request)
        entry = await _describe(request)
        if sandbox.is_down:
            return reset_when_down(request, entry, sandbox.record)
        try:
            response = await _answer(sandbox, request, handler, entry)
        except JiraError as err:
            response = err.to_response()
        entry.status = response.status
        if request.path in sandbox.lose_answers and request.transport is not None:
            sandbox.lose_answers.discard(request.path)
            entry.fault = "answer_lost"
            sandbox.record(entry)
            request.transport.abort()  # the work is done; the caller never hears of it
            return response
        sandbox.record(entry)
        return response

    return middleware
