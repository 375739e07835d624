"""The middleware in front of every ARM, Graph and Entra ID route of the ARM sandbox.

For each request (control routes under ``/_sandbox/`` excepted), in this order: read and
log it (never a token or secret), answer 503 in "down" mode, apply the first matching
queued fault of that service, authenticate (ARM and Graph: a bearer token this sandbox
issued, for the right audience, not expired), check ARM's ``api-version``, then run the
route. Errors use the service's own envelope (see ``sandbox.arm_records``); answers carry
the service's request-id headers.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.arm_auth import authenticate_arm, authenticate_graph
from sandbox.arm_deployments_routes import deployments_operation, is_deployments_path
from sandbox.arm_deployments_routes import served_api_version as deployments_api_version
from sandbox.arm_http import BODY_KEY, CLAIMS_KEY, MATCH_KEY, RECORD_KEY, Body, match_arm
from sandbox.arm_policy_routes import is_policy_path, policy_operation, served_api_version
from sandbox.arm_records import (
    ArmError,
    GraphError,
    RequestRecord,
    SandboxError,
    Service,
    auth_fields,
    fault_error,
    status_error,
)
from sandbox.arm_resourcegraph_routes import OPERATION as GRAPH_QUERY
from sandbox.arm_resourcegraph_routes import is_resource_graph_path
from sandbox.arm_resourcegraph_routes import served_api_version as graph_api_version
from sandbox.arm_rules import api_version_error
from sandbox.arm_schema import API_VERSION
from sandbox.connector_faults import Fault, delay_or_drop, retry_after_header

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox


_SAFE_FORM_FIELDS = ("grant_type", "client_id", "scope")


def service_of(path: str) -> Service | None:
    """Return which service a path belongs to; None for the control API."""
    lowered = path.lower()
    if lowered.startswith("/_sandbox/") or lowered == "/_sandbox":
        return None
    if lowered.startswith(("/subscriptions/", "/providers/")):
        return "arm"
    if lowered.startswith("/v1.0/"):
        return "graph"
    return "login"


def sandbox_middleware(sandbox: ArmSandbox) -> Middleware:
    """Return the middleware that logs, faults, authenticates and checks every service call."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; every service call ends up in the sandbox log."""
        service = service_of(request.path)
        if service is None:
            return await handler(request)
        record = await _new_record(request, service)
        request[RECORD_KEY] = record
        try:
            response = await _answer(sandbox, service, request, handler, record)
        except SandboxError as err:
            response = err.to_response()
        _decorate(response, service, request)
        record.status = None if record.fault == "drop" else response.status
        sandbox.record(record)
        return response

    return middleware


async def _new_record(request: web.Request, service: Service) -> RequestRecord:
    """Read the body and describe the request for the log (secrets dropped)."""
    body = await _read_body(request, service)
    request[BODY_KEY] = body
    present, scheme = auth_fields(request.headers.get("Authorization"))
    operation, incident_id, child_id = request.match_info.route.name or "Unknown", None, None
    if service == "arm":
        found = match_arm(request.method, request.path)
        request[MATCH_KEY] = found
        operation, incident_id, child_id = found.operation, found.incident, found.child
        if is_policy_path(request.path):
            operation = policy_operation(request.method, request.path, request.query)
        elif is_resource_graph_path(request.path):
            operation = GRAPH_QUERY
        elif is_deployments_path(request.path):
            operation = deployments_operation(request.method, request.path)
    return RequestRecord(
        time=time.time(),
        service=service,
        method=request.method,
        path=request.path,
        raw_path=request.raw_path,
        query=dict(request.query),
        operation=operation,
        incident_id=incident_id,
        child_id=child_id,
        body=body.value,
        auth_present=present,
        auth_scheme=scheme,
        traceparent=request.headers.get("traceparent"),
        client_request_id=request.headers.get("x-ms-client-request-id")
        or request.headers.get("client-request-id"),
    )


async def _read_body(request: web.Request, service: Service) -> Body:
    """Parse the body (JSON, or for Entra ID a form of which only safe fields are kept)."""
    try:
        raw = await request.read()
    except web.HTTPException as exc:
        return Body(error=status_error(service, exc.status, exc.reason))
    if not raw:
        return Body()
    if service == "login":
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        return Body(value={key: form[key] for key in _SAFE_FORM_FIELDS if key in form})
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        message = (
            f"The content media type '{content_type}' is not supported. "
            "Only 'application/json' is supported."
        )
        return Body(error=_body_error(service, 415, "UnsupportedMediaType", message))
    try:
        return Body(value=json.loads(raw))
    except ValueError as exc:
        message = f"The request content was invalid and could not be deserialized: '{exc}'."
        return Body(error=_body_error(service, 400, "InvalidRequestContent", message))


def _body_error(service: Service, status: int, code: str, message: str) -> SandboxError:
    """Return a body problem in the service's envelope."""
    if service == "graph":
        return GraphError(status, "BadRequest", message)
    return ArmError(status, code, message)


async def _answer(
    sandbox: ArmSandbox,
    service: Service,
    request: web.Request,
    handler: Handler,
    record: RequestRecord,
) -> web.StreamResponse:
    """Apply down mode, faults, authentication and the api-version check, then the route."""
    if sandbox.is_down(service):
        record.fault = "down"
        headers = retry_after_header(sandbox.down_retry_after(service))
        error = fault_error(service, 503, None, "The service is temporarily unavailable.")
        error.headers.update(headers)
        raise error
    fault = sandbox.faults[service].take(request.method, request.path, request.raw_path)
    if fault is not None:
        dropped = await _apply_fault(service, request, fault, record)
        if dropped is not None:
            return dropped
    if service == "arm":
        request[CLAIMS_KEY] = authenticate_arm(sandbox, request.headers.get("Authorization"))
        record.app_id = request[CLAIMS_KEY].get("appid")
        supported = deployments_api_version(
            request.path,
            graph_api_version(request.path, served_api_version(request.path, API_VERSION)),
        )
        version_error = api_version_error(request.query.get("api-version"), supported)
        if version_error is not None:
            raise version_error
    elif service == "graph":
        request[CLAIMS_KEY] = authenticate_graph(sandbox, request.headers.get("Authorization"))
        record.app_id = request[CLAIMS_KEY].get("appid")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        raise status_error(service, exc.status, exc.reason) from None


async def _apply_fault(
    service: Service, request: web.Request, fault: Fault, record: RequestRecord
) -> web.StreamResponse | None:
    """Delay, drop or fail as the fault says; None means "carry on normally"."""
    dropped = await delay_or_drop(request, fault, record)
    if dropped is not None:
        return dropped
    if fault.status is not None:
        record.fault = "status"
        error = fault_error(service, fault.status, fault.code, fault.message)
        error.headers.update(fault.retry_after_header())
        if service == "arm" and fault.status == 429:
            error.headers[_remaining_header(request.method)] = "0"
        raise error
    return None


def _remaining_header(method: str) -> str:
    """Return ARM's remaining-requests header name for a method."""
    kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method, "writes")
    return f"x-ms-ratelimit-remaining-subscription-{kind}"


def _decorate(response: web.StreamResponse, service: Service, request: web.Request) -> None:
    """Add the request-id headers the real service sends."""
    if service == "arm":
        request_id = str(uuid.uuid4())
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers.setdefault("x-ms-correlation-request-id", request_id)
        response.headers.setdefault(_remaining_header(request.method), "11999")
    elif service == "graph":
        client_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        response.headers.setdefault("request-id", str(uuid.uuid4()))
        response.headers.setdefault("client-request-id", client_id)
    else:
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
