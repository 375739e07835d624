"""Control API of the Connector sandbox (JSON, under ``/_sandbox/``, never logged or faulted).

``GET    /_sandbox/requests``          200 ``{"requests": [entry...]}`` (the request log)
``DELETE /_sandbox/requests``          204, empties the log
``GET    /_sandbox/faults``            200 ``{"faults": [fault...]}`` (pending, first fires first)
``POST   /_sandbox/faults``            201 ``{"fault": fault}``; body: a fault (see
                                       ``sandbox.connector_faults``); 400 if malformed
``DELETE /_sandbox/faults``            204, drops queued faults and leaves "down" mode
``GET    /_sandbox/mode``              200 ``{"down", "downRetryAfter", "rateLimit",
                                       "requireAuth"}``
``PUT    /_sandbox/mode``              200 same; body: any subset of those keys
``POST   /_sandbox/conversations/{id}/remove``   204, later calls answer 403
``POST   /_sandbox/conversations/{id}/restore``  204, undoes remove
``GET    /_sandbox/conversations/{id}/activities`` 200 ``{"activities": [stored...]}``
``POST   /_sandbox/reset``             204, forgets everything (mode switches stay)

Conversation ids go URL-encoded in the path (``19%3Aabc%40thread.tacv2``).
A log entry: ``{time, method, path, rawPath, operation, conversationId, activityId,
body, authorization: {present, scheme}, traceparent, status, resultId, fault}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.connector_faults import Fault
from sandbox.connector_records import ConnectorError

if TYPE_CHECKING:
    from sandbox.connector import ConnectorSandbox

_MODE_TYPES: dict[str, tuple[type, ...]] = {
    "down": (bool,),
    "downRetryAfter": (int, float, type(None)),
    "rateLimit": (bool,),
    "requireAuth": (bool,),
}


async def _json_body(request: web.Request) -> Any:
    """Return the parsed JSON body, raising ConnectorError 400 if it is not JSON."""
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        raise ConnectorError(400, "BadArgument", "Request body is not valid JSON") from None


class _ControlRoutes:
    """Handlers of the control API, bound to one sandbox."""

    def __init__(self, sandbox: ConnectorSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    def mode(self) -> dict[str, Any]:
        """Return the current mode switches."""
        return {
            "down": self.sandbox.down,
            "downRetryAfter": self.sandbox.down_retry_after,
            "rateLimit": self.sandbox.rate_limit,
            "requireAuth": self.sandbox.require_auth,
        }

    async def get_requests(self, request: web.Request) -> web.Response:
        """Return the request log."""
        return web.json_response({"requests": [e.to_json() for e in self.sandbox.requests]})

    async def clear_requests(self, request: web.Request) -> web.Response:
        """Empty the request log."""
        self.sandbox.clear_requests()
        return web.Response(status=204)

    async def get_faults(self, request: web.Request) -> web.Response:
        """Return the pending faults."""
        faults = [fault.to_json() for fault in self.sandbox.faults.snapshot()]
        return web.json_response({"faults": faults})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Queue the fault in the body."""
        try:
            fault = Fault.from_json(await _json_body(request))
        except ValueError as exc:
            raise ConnectorError(400, "BadArgument", str(exc)) from None
        self.sandbox.add_fault(fault)
        return web.json_response({"fault": fault.to_json()}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Drop queued faults and leave down mode."""
        self.sandbox.clear_faults()
        return web.Response(status=204)

    async def get_mode(self, request: web.Request) -> web.Response:
        """Return the mode switches."""
        return web.json_response(self.mode())

    async def put_mode(self, request: web.Request) -> web.Response:
        """Change any of the mode switches given in the body."""
        body = await _json_body(request)
        if not isinstance(body, dict) or not set(body) <= set(_MODE_TYPES):
            raise ConnectorError(400, "BadArgument", f"body keys must be among {list(_MODE_TYPES)}")
        for key, value in body.items():
            if not isinstance(value, _MODE_TYPES[key]) or (
                isinstance(value, bool) and bool not in _MODE_TYPES[key]
            ):
                raise ConnectorError(400, "BadArgument", f"{key!r} has the wrong type")
        sandbox = self.sandbox
        if "down" in body or "downRetryAfter" in body:
            down = body.get("down", sandbox.down)
            sandbox.set_down(down, body.get("downRetryAfter", sandbox.down_retry_after))
        sandbox.rate_limit = body.get("rateLimit", sandbox.rate_limit)
        sandbox.require_auth = body.get("requireAuth", sandbox.require_auth)
        return web.json_response(self.mode())

    async def remove(self, request: web.Request) -> web.Response:
        """Simulate the bot being removed from the conversation."""
        self.sandbox.remove_conversation(request.match_info["conversationId"])
        return web.Response(status=204)

    async def restore(self, request: web.Request) -> web.Response:
        """Undo a removal."""
        self.sandbox.restore_conversation(request.match_info["conversationId"])
        return web.Response(status=204)

    async def activities(self, request: web.Request) -> web.Response:
        """Return the activities stored in a conversation."""
        stored = self.sandbox.activities(request.match_info["conversationId"])
        return web.json_response({"activities": [item.to_json() for item in stored]})

    async def reset(self, request: web.Request) -> web.Response:
        """Forget conversations, log, faults and rate-limit history."""
        self.sandbox.reset()
        return web.Response(status=204)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn ConnectorError raised by a control handler into an ErrorResponse."""
    try:
        response: web.StreamResponse = await handler(request)
    except ConnectorError as err:
        return err.to_response()
    return response


def add_control_routes(app: web.Application, sandbox: ConnectorSandbox) -> None:
    """Mount the control API on ``app`` as a sub-application under ``/_sandbox/``."""
    routes = _ControlRoutes(sandbox)
    control = web.Application(middlewares=[_errors])
    conversation = "/conversations/{conversationId}"
    control.router.add_get("/requests", routes.get_requests)
    control.router.add_delete("/requests", routes.clear_requests)
    control.router.add_get("/faults", routes.get_faults)
    control.router.add_post("/faults", routes.add_fault)
    control.router.add_delete("/faults", routes.clear_faults)
    control.router.add_get("/mode", routes.get_mode)
    control.router.add_put("/mode", routes.put_mode)
    control.router.add_post(conversation + "/remove", routes.remove)
    control.router.add_post(conversation + "/restore", routes.restore)
    control.router.add_get(conversation + "/activities", routes.activities)
    control.router.add_post("/reset", routes.reset)
    app.add_subapp("/_sandbox/", control)
