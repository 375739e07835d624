"""The middleware in front of every route of the Graph sandbox (``/_sandbox/`` excepted).

For each request, in this order: describe it for the log (never a token, never file
bytes), answer 503 in "down" mode, apply the first matching queued fault, authenticate
(a bearer token the ARM sandbox issued for a Graph audience; SharePoint routes also need
a ``Sites.*`` application role, channel messages a ``ChannelMessage.Read.*`` one, security
routes a ``SecurityIncident.*`` or ``SecurityAlert.*`` one), then run the route.
``uploadUrl`` requests are pre-authenticated: they must come without an Authorization header.
JSON bodies are parsed here; any other body (file bytes) is left unread for the handler to
stream to disk.
Errors are Graph's OData envelope; answers carry ``request-id`` and ``client-request-id``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.arm_auth import authenticate_graph
from sandbox.arm_http import BODY_KEY, CLAIMS_KEY, RECORD_KEY, Body
from sandbox.arm_records import GraphError, RequestRecord, SandboxError, auth_fields, status_error
from sandbox.connector_faults import delay_or_drop, retry_after_header
from sandbox.graph_changes import app_actor, set_actor
from sandbox.graph_channels import CHANNEL_ROLES
from sandbox.graph_security import security_roles

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

UPLOAD_PREFIX = "/_upload/"
"""Path prefix of upload session URLs (pre-authenticated, no bearer token)."""

SITES_ROLES = frozenset(
    {"Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All", "Sites.Selected"}
)
"""Application roles that may read and write list items and files."""

_READ_ROLES = SITES_ROLES | {"Sites.Read.All"}


def graph_middleware(sandbox: GraphSandbox) -> Middleware:
    """Return the middleware that logs, faults and authenticates every Graph call."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; every Graph call ends up in the sandbox log."""
        if request.path.startswith("/_sandbox"):
            return await handler(request)
        record = await _new_record(request)
        request[RECORD_KEY] = record
        try:
            response = await _answer(sandbox, request, handler, record)
        except SandboxError as err:
            err.headers.setdefault("client-request-id", _client_id(request))
            response = err.to_response()
        _decorate(response, request)
        record.status = None if record.fault == "drop" else response.status
        sandbox.record(record)
        return response

    return middleware


def _client_id(request: web.Request) -> str:
    """Return the caller's client-request-id (or a new one)."""
    return request.headers.get("client-request-id") or str(uuid.uuid4())


async def _new_record(request: web.Request) -> RequestRecord:
    """Read a JSON body and describe the request for the log (no credentials, no bytes)."""
    body = await _read_body(request)
    request[BODY_KEY] = body
    present, scheme = auth_fields(request.headers.get("Authorization"))
    return RequestRecord(
        time=time.time(),
        service="graph",
        method=request.method,
        path=request.path,
        raw_path=request.raw_path,
        query=dict(request.query),
        operation=request.match_info.route.name or "Unknown",
        incident_id=None,
        child_id=None,
        body=body.value,
        auth_present=present,
        auth_scheme=scheme,
        traceparent=request.headers.get("traceparent"),
        client_request_id=request.headers.get("client-request-id"),
    )


async def _read_body(request: web.Request) -> Body:
    """Parse a JSON body; leave any other body unread (handlers stream it)."""
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        return Body()
    try:
        raw = await request.read()
    except web.HTTPException as exc:
        return Body(error=status_error("graph", exc.status, exc.reason))
    if not raw:
        return Body()
    try:
        return Body(value=json.loads(raw))
    except ValueError:
        message = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."  # noqa: E501
        return Body(error=GraphError(400, "BadRequest", message))


async def _answer(
    sandbox: GraphSandbox, request: web.Request, handler: Handler, record: RequestRecord
) -> web.StreamResponse:
    """Apply down mode, faults and authentication, then run the route."""
    if sandbox.down:
        record.fault = "down"
        message = "The service is temporarily unavailable."
        raise GraphError(
            503, "serviceNotAvailable", message, retry_after_header(sandbox.down_retry_after)
        )
    fault = sandbox.faults.take(request.method, request.path, request.raw_path)
    if fault is not None:
        dropped = await delay_or_drop(request, fault, record)
        if dropped is not None:
            return dropped
        if fault.status is not None:
            record.fault = "status"
            code = fault.code or {429: "TooManyRequests", 503: "serviceNotAvailable"}.get(
                fault.status, "generalException"
            )
            text = fault.message or "Fault injected by the Graph sandbox."
            raise GraphError(fault.status, code, text, fault.retry_after_header())
    _authenticate(sandbox, request, record)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        raise status_error("graph", exc.status, exc.reason) from None


def _authenticate(sandbox: GraphSandbox, request: web.Request, record: RequestRecord) -> None:
    """Check the bearer token (and the Sites role), or that an upload URL has none."""
    header = request.headers.get("Authorization")
    if request.path.startswith("/_download/"):
        return  # pre-authenticated, short-lived
    if request.path.startswith(UPLOAD_PREFIX):
        if header:
            message = "The upload URL is pre-authenticated; do not send an Authorization header."
            raise GraphError(401, "unauthenticated", message)
        return
    claims = authenticate_graph(sandbox.arm, header)
    request[CLAIMS_KEY] = claims
    record.app_id = claims.get("appid")
    set_actor(_application(sandbox, str(claims.get("appid") or "")))
    if "/users/" in request.path or request.path.startswith("/v1.0/appCatalogs/"):
        return  # user and app-catalog routes check their own roles
    if request.path == "/v1.0/$batch":
        return  # batch parts are checked one by one
    roles = set(claims.get("roles", []))
    needed = _READ_ROLES if request.method in ("GET", "HEAD") else SITES_ROLES
    if request.path.startswith("/v1.0/teams/") and request.path.endswith(("/messages", "/replies")):
        needed = CHANNEL_ROLES
    if request.path.startswith("/v1.0/security/"):
        needed = security_roles(request.method, request.path)
    if not roles & needed:
        raise GraphError(403, "accessDenied", "Access denied")


def _application(sandbox: GraphSandbox, app_id: str) -> dict[str, Any]:
    """The identitySet of the calling application (its registered display name)."""
    client = sandbox.arm.clients.get(app_id.lower())
    return app_actor(app_id, client.display_name if client is not None else app_id)


def _decorate(response: web.StreamResponse, request: web.Request) -> None:
    """Add Graph's request-id headers."""
    response.headers.setdefault("request-id", str(uuid.uuid4()))
    response.headers.setdefault("client-request-id", _client_id(request))
