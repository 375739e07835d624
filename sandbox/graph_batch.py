"""JSON batching of the Graph sandbox: ``POST /v1.0/$batch`` (supplement ``batch``).

Up to 20 requests ``{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}``; ids are
unique (case-insensitive), a body needs a Content-Type header, and ``dependsOn`` names
earlier ids. Any of these broken fails the whole batch with 400. Otherwise the batch
answers 200 ``{"responses": [{"id", "status", "headers", "body"}...]}``. Each inner request
is sent over HTTP to this very server with the batch's Authorization header, so it is
logged, faulted (an inner 429 keeps its own Retry-After) and checked like any other call;
one pooled keep-alive session (closed with the app) carries them.
Requests run one after another in the order given; one whose dependency did not succeed
answers 424 ``failedDependency`` without being sent.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from sandbox.arm_http import request_json
from sandbox.arm_records import GraphError

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

MAX_REQUESTS = 20
"""Graph accepts at most this many requests in one batch."""

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _bad(message: str) -> GraphError:
    """Return the whole-batch 400."""
    return GraphError(400, "BadRequest", message)


def _requests(body: object) -> list[dict[str, Any]]:
    """Return the batch's requests after Graph's checks; raise the batch's 400 otherwise."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _bad("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(f"The number of batch requests exceeds the limit of {MAX_REQUESTS}.")
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("id", "method", "url")
        ):
            raise _bad("Each batch request needs string 'id', 'method' and 'url' properties.")
        if entry["method"].upper() not in _METHODS:
            raise _bad(f"Invalid method '{entry['method']}' in batch request {entry['id']}.")
        if entry["id"].lower() in seen:
            raise _bad(f"Batch request id '{entry['id']}' is not unique.")
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        if "body" in entry and "content-type" not in headers:
            message = f"Write request id : {entry['id']} does not contain Content-Type header."
            raise _bad(message)
        for needed in entry.get("dependsOn") or []:
            if not isinstance(needed, str) or needed.lower() not in seen:
                raise _bad(f"Request {entry['id']} depends on unknown request '{needed}'.")
        seen.add(entry["id"].lower())
    return requests


def _payload(entry: dict[str, Any]) -> bytes | None:
    """Return the bytes of an inner request body (JSON, or base64 for other types)."""
    if "body" not in entry:
        return None
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    body = entry["body"]
    if "json" not in headers["content-type"] and isinstance(body, str):
        return base64.b64decode(body)
    return json.dumps(body).encode()


class BatchRoute:
    """The $batch handler, bound to one sandbox."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Bind the handler to ``sandbox``."""
        self.sandbox = sandbox
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        """Return the pooled session for inner requests (made on first use)."""
        if self._http is None or self._http.closed:
            context = self.sandbox.arm.ssl_context()
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return self._http

    async def close(self, app: web.Application) -> None:
        """Close the pooled session (on the app's cleanup)."""
        if self._http is not None:
            await self._http.close()

    async def batch(self, request: web.Request) -> web.Response:
        """Run every inner request and answer their responses."""
        requests = _requests(request_json(request))
        auth = request.headers.get("Authorization", "")
        http = self._session()
        answers: list[dict[str, Any]] = []
        outcome: dict[str, int] = {}
        for entry in requests:
            failed = [
                d for d in entry.get("dependsOn") or [] if not 200 <= outcome[d.lower()] < 300
            ]
            if failed:
                answer = _failed_dependency(entry["id"], failed[0])
            else:
                answer = await self._send(http, entry, auth)
            outcome[entry["id"].lower()] = answer["status"]
            answers.append(answer)
        return web.json_response({"responses": answers})

    async def _send(
        self, http: aiohttp.ClientSession, entry: dict[str, Any], auth: str
    ) -> dict[str, Any]:
        """Send one inner request to this server and describe its answer."""
        headers = dict(entry.get("headers") or {})
        if auth:
            headers["Authorization"] = auth
        url = f"{self.sandbox.graph_url}/{entry['url'].lstrip('/')}"
        async with http.request(
            entry["method"].upper(),
            url,
            headers=headers,
            data=_payload(entry),
            allow_redirects=False,
        ) as response:
            raw = await response.read()
            kept = {
                k: v
                for k, v in response.headers.items()
                if k.lower() in ("content-type", "location", "retry-after", "etag")
            }
            answer: dict[str, Any] = {"id": entry["id"], "status": response.status, "headers": kept}
            if raw:
                is_json = response.content_type == "application/json"
                answer["body"] = json.loads(raw) if is_json else base64.b64encode(raw).decode()
            return answer


def _failed_dependency(request_id: str, dependency: str) -> dict[str, Any]:
    """Return the inner 424 of a request whose dependency failed."""
    error = GraphError(424, "failedDependency", f"The dependency '{dependency}' failed.")
    return {
        "id": request_id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": error.body(),
    }


def add_batch_route(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register ``POST /v1.0/$batch``."""
    route = BatchRoute(sandbox)
    app.router.add_post("/v1.0/$batch", route.batch, name="batch")
    app.on_cleanup.append(route.close)
