"""Connector REST API v3 routes of the sandbox, and the middleware in front of them.

For every ``/v3/`` request the middleware, in this order: logs it (never the
Authorization value), answers 503 in "down" mode, applies the first matching
queued fault, checks the bearer header when required, applies the rate limiter
when enabled, then runs the route. Errors always use the ErrorResponse envelope.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.connector_faults import Fault, delay_or_drop, retry_after_header
from sandbox.connector_records import (
    ConnectorError,
    RequestRecord,
    auth_fields,
    default_error_code,
    group_conversation_id,
    personal_conversation_id,
)
from sandbox.connector_schema import activity_error, schema_error

if TYPE_CHECKING:
    from sandbox.connector import ConnectorSandbox


@dataclass(frozen=True)
class _Body:
    """A request body: its parsed JSON, or the error to answer if it is needed."""

    value: Any = None
    error: ConnectorError | None = None
    raw: bytes = b""


BODY_KEY = web.RequestKey("connector_sandbox_body", _Body)
RECORD_KEY = web.RequestKey("connector_sandbox_record", RequestRecord)

_CATEGORIES = {
    "SendToConversation": "send",
    "ReplyToActivity": "send",
    "UpdateActivity": "send",
    "DeleteActivity": "send",
    "CreateConversation": "create",
    "GetConversationMembers": "members",
    "GetConversationPagedMembers": "members",
}


def connector_middleware(sandbox: ConnectorSandbox) -> Middleware:
    """Return the middleware that logs, faults, authenticates and throttles ``/v3/`` calls."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; every ``/v3/`` call ends up in the sandbox log."""
        if not request.path.startswith("/v3/"):
            return await handler(request)
        record = await _new_record(request)
        request[RECORD_KEY] = record
        try:
            response = await _answer(sandbox, request, handler, record)
        except ConnectorError as err:
            response = err.to_response()
        record.status = None if record.fault in ("drop", "cut") else response.status
        sandbox.record(record)
        return response

    return middleware


async def _new_record(request: web.Request) -> RequestRecord:
    """Read the body and describe the request for the log."""
    body = await _read_body(request)
    request[BODY_KEY] = body
    present, scheme = auth_fields(request.headers.get("Authorization"))
    return RequestRecord(
        time=time.time(),
        method=request.method,
        path=request.path,
        raw_path=request.raw_path,
        operation=request.match_info.route.name or "Unknown",
        conversation_id=request.match_info.get("conversationId"),
        activity_id=request.match_info.get("activityId"),
        body=body.value,
        auth_present=present,
        auth_scheme=scheme,
        traceparent=request.headers.get("traceparent"),
    )


async def _read_body(request: web.Request) -> _Body:
    """Parse a JSON body; remember (not raise) what is wrong with it."""
    try:
        raw = await request.read()
    except web.HTTPException as exc:
        return _Body(error=ConnectorError(exc.status, default_error_code(exc.status), exc.reason))
    if not raw:
        return _Body()
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        message = f"Content-Type must be application/json, not {content_type!r}"
        return _Body(error=ConnectorError(415, "BadArgument", message))
    try:
        return _Body(value=json.loads(raw), raw=raw)
    except ValueError:
        return _Body(error=ConnectorError(400, "BadArgument", "Request body is not valid JSON"))


async def _answer(
    sandbox: ConnectorSandbox, request: web.Request, handler: Handler, record: RequestRecord
) -> web.StreamResponse:
    """Apply down mode, faults, auth and rate limits, then run the route."""
    if sandbox.down:
        record.fault = "down"
        headers = retry_after_header(sandbox.down_retry_after)
        raise ConnectorError(503, "ServiceError", "The service is unavailable.", headers)
    fault = sandbox.faults.take(request.method, request.path, request.raw_path)
    if fault is not None:
        dropped = await _apply_fault(request, fault, record)
        if dropped is not None:
            return dropped
    _check_auth(sandbox, request)
    _check_rate(sandbox, record)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = default_error_code(exc.status)
        raise ConnectorError(exc.status, code, exc.reason, allow) from None
    if fault is not None and fault.delay_after > 0:
        record.fault = "late"  # the work is done; only the answer is slow
        await asyncio.sleep(fault.delay_after)
    if fault is not None and fault.drop_after:
        record.fault = "cut"  # the work is done; its answer never arrives
        if request.transport is not None:
            request.transport.abort()
    return response


async def _apply_fault(
    request: web.Request, fault: Fault, record: RequestRecord
) -> web.StreamResponse | None:
    """Delay, drop or fail as the fault says; None means "carry on normally"."""
    dropped = await delay_or_drop(request, fault, record)
    if dropped is not None:
        return dropped
    if fault.status is not None:
        record.fault = "status"
        code = fault.code or default_error_code(fault.status)
        message = fault.message or "Fault injected by the connector sandbox."
        raise ConnectorError(fault.status, code, message, fault.retry_after_header())
    return None


def _check_auth(sandbox: ConnectorSandbox, request: web.Request) -> None:
    """Answer 401 when a bearer token is required and absent (it is never verified)."""
    if not sandbox.require_auth:
        return
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ConnectorError(401, "Unauthorized", "Authorization has been denied for this request.")


def _check_rate(sandbox: ConnectorSandbox, record: RequestRecord) -> None:
    """Answer 429 with Retry-After when the Teams-like rate limiter refuses the call."""
    if not sandbox.rate_limit:
        return
    category = _CATEGORIES.get(record.operation, "other")
    wait = sandbox.rate_limiter.admit(category, record.conversation_id or "")
    if wait is not None:
        record.fault = "rate_limit"
        message = "Too many requests in this conversation; retry later."
        raise ConnectorError(429, "Throttled", message, retry_after_header(wait))


def _json(request: web.Request, definition: str) -> dict[str, Any]:
    """Return the request's JSON body, valid against ``#/definitions/<definition>``."""
    body = request[BODY_KEY]
    if body.error is not None:
        raise body.error
    if body.value is None:
        raise ConnectorError(400, "BadArgument", "A JSON request body is required")
    problem = schema_error(definition, body.value)
    if problem is not None:
        raise ConnectorError(400, "BadArgument", problem)
    assert isinstance(body.value, dict)
    return body.value


def _activity(request: web.Request) -> dict[str, Any]:
    """Return the request's activity body, answering 400 if the Connector would refuse it.

    The body is a parse of its own (the request log keeps the first one), so the sandbox
    stores it as it is, without a deep copy.
    """
    body = _json(request, "Activity")
    problem = activity_error(body)
    if problem is not None:
        raise ConnectorError(400, "BadArgument", problem)
    owned: dict[str, Any] = json.loads(request[BODY_KEY].raw)
    return owned


def _resource(request: web.Request, resource_id: str, status: int) -> web.Response:
    """Answer a ResourceResponse ``{"id": ...}`` and note the id in the log."""
    request[RECORD_KEY].result_id = resource_id
    return web.json_response({"id": resource_id}, status=status)


class _ConnectorRoutes:
    """Route handlers of the Connector API, bound to one sandbox."""

    def __init__(self, sandbox: ConnectorSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    async def create_conversation(self, request: web.Request) -> web.Response:
        """CreateConversation: 201 ConversationResourceResponse."""
        params = _json(request, "ConversationParameters")
        activity = params.get("activity")
        if activity is not None:
            problem = activity_error(activity)
            if problem is not None:
                raise ConnectorError(400, "BadArgument", problem)
        channel = _channel_id(params)
        if channel is not None:
            self.sandbox.ensure_member(channel)
        conversation_id = channel or (
            group_conversation_id() if params.get("isGroup") else personal_conversation_id()
        )
        self.sandbox.open_conversation(conversation_id)
        answer: dict[str, str] = {"serviceUrl": self.sandbox.url or _own_url(request)}
        if activity is not None:
            stored = self.sandbox.post_activity(conversation_id, activity)
            answer["activityId"] = stored.id
            if channel is not None:
                conversation_id = f"{channel};messageid={stored.id}"
        answer["id"] = conversation_id
        request[RECORD_KEY].conversation_id = conversation_id
        request[RECORD_KEY].result_id = conversation_id
        return web.json_response(answer, status=201)

    async def send(self, request: web.Request) -> web.Response:
        """SendToConversation: 201 ResourceResponse with the new activity id."""
        conversation_id = request.match_info["conversationId"]
        self.sandbox.ensure_member(conversation_id)
        stored = self.sandbox.post_activity(conversation_id, _activity(request), owned=True)
        return _resource(request, stored.id, 201)

    async def reply(self, request: web.Request) -> web.Response:
        """ReplyToActivity: 201 ResourceResponse; the parent need not be known."""
        conversation_id = request.match_info["conversationId"]
        self.sandbox.ensure_member(conversation_id)
        body = _activity(request)
        stored = self.sandbox.post_activity(
            conversation_id, body, reply_to_id=request.match_info["activityId"], owned=True
        )
        return _resource(request, stored.id, 201)

    async def update(self, request: web.Request) -> web.Response:
        """UpdateActivity: 200 ResourceResponse, 404 if the activity is unknown."""
        conversation_id = request.match_info["conversationId"]
        activity_id = request.match_info["activityId"]
        self.sandbox.ensure_member(conversation_id)
        body = _activity(request)
        self.sandbox.update_activity(conversation_id, activity_id, body, owned=True)
        return _resource(request, activity_id, 200)

    async def delete(self, request: web.Request) -> web.Response:
        """DeleteActivity: 200 with an empty body, 404 if the activity is unknown."""
        self.sandbox.delete_activity(
            request.match_info["conversationId"], request.match_info["activityId"]
        )
        return web.Response(status=200)

    async def team(self, request: web.Request) -> web.Response:
        """FetchTeamDetails: 200 TeamDetails, with the team's Entra ID group id."""
        team_id = request.match_info["teamId"]
        self.sandbox.ensure_member(team_id)
        details = {"id": team_id, "name": "Security Operations", "aadGroupId": team_group(team_id)}
        return web.json_response(details)

    async def members(self, request: web.Request) -> web.Response:
        """GetConversationMembers: 200 with a JSON array of Teams channel accounts."""
        self.sandbox.ensure_member(request.match_info["conversationId"])
        return web.json_response(self.sandbox.members)

    async def member(self, request: web.Request) -> web.Response:
        """GetConversationMember: 200 one Teams channel account, 404 for a stranger."""
        self.sandbox.ensure_member(request.match_info["conversationId"])
        wanted = request.match_info["memberId"]
        for account in self.sandbox.members:
            if wanted in (account.get("id"), account.get("aadObjectId")):
                return web.json_response(account)
        body = {"error": {"code": "MemberNotFoundInConversation", "message": "no such member"}}
        return web.json_response(body, status=404)

    async def paged_members(self, request: web.Request) -> web.Response:
        """GetConversationPagedMembers: 200 PagedMembersResult (a single page)."""
        self.sandbox.ensure_member(request.match_info["conversationId"])
        return web.json_response({"members": self.sandbox.members})


def team_group(team_id: str) -> str:
    """The Entra ID group id the sandbox gives a team: a GUID derived from its thread id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"teams:{team_id}"))


def _channel_id(params: dict[str, Any]) -> str | None:
    """Return ``channelData.channel.id`` of ConversationParameters (Teams channel post)."""
    channel_data = params.get("channelData")
    if not isinstance(channel_data, dict):
        return None
    channel = channel_data.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    return channel_id if isinstance(channel_id, str) and channel_id else None


def _own_url(request: web.Request) -> str:
    """Return this server's base URL as the client addressed it, with a trailing slash."""
    return f"{request.scheme}://{request.host}/"


def add_connector_routes(app: web.Application, sandbox: ConnectorSandbox) -> None:
    """Register the Connector API v3 routes on ``app``; route names are operation ids."""
    routes = _ConnectorRoutes(sandbox)
    conversation = "/v3/conversations/{conversationId}"
    activity = conversation + "/activities/{activityId}"
    router = app.router
    router.add_post("/v3/conversations", routes.create_conversation, name="CreateConversation")
    router.add_post(conversation + "/activities", routes.send, name="SendToConversation")
    router.add_post(activity, routes.reply, name="ReplyToActivity")
    router.add_put(activity, routes.update, name="UpdateActivity")
    router.add_delete(activity, routes.delete, name="DeleteActivity")
    router.add_get("/v3/teams/{teamId}", routes.team, name="FetchTeamDetails")
    router.add_get(conversation + "/members", routes.members, name="GetConversationMembers")
    router.add_get(
        conversation + "/members/{memberId}", routes.member, name="GetConversationMember"
    )
    router.add_get(
        conversation + "/pagedmembers", routes.paged_members, name="GetConversationPagedMembers"
    )
