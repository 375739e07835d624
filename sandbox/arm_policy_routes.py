"""Policy Insights routes of the ARM sandbox: queryResults, attestations, a control API.

ARM side (behind the sandbox middleware: log, faults, token, api-version 2024-10-01):
``POST {scope}/providers/Microsoft.PolicyInsights/policyStates/{latest|default}/queryResults``
at subscription, resource-group and resource scope (swagger operation ids
``PolicyStates_ListQueryResultsFor{Subscription,ResourceGroup,Resource}``); the
``@odata.nextLink`` it gives is POSTed again (``PolicyStates_NextLink``).
``PUT|GET|DELETE {scope}/providers/Microsoft.PolicyInsights/attestations/{name}``
(``Attestations_{CreateOrUpdate,Get,Delete}At{Subscription,ResourceGroup,Resource}``; see
``sandbox.arm_policy_attest``).

Control side, JSON under ``/_sandbox/policy/`` (never logged, faulted or checked):

``GET   /_sandbox/policy/states``   200 ``{"value": [record...]}``
``POST  /_sandbox/policy/states``   201 (new) or 200 (replaced) record; body: PolicyState
                                    fields, at least ``resourceId``, ``policyAssignmentId``,
                                    ``policyDefinitionId`` and ``complianceState``
``PATCH /_sandbox/policy/states``   200 ``{"value": [record...]}``; body ``{"resourceId",
                                    "policyAssignmentId", "complianceState",
                                    "policyDefinitionReferenceId"?}``: a re-evaluation
``POST  /_sandbox/policy/seed``     201 ``{"value": [...]}``; body ``{"count": n,
                                    "subscriptionId"?}``: NonCompliant records
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.arm_http import request_json
from sandbox.arm_odata import ODataError
from sandbox.arm_policy import POLICY_API_VERSION, PolicyStates, generate_state
from sandbox.arm_policy_attest import apply_to_states
from sandbox.arm_records import ArmError, SandboxError

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

_PATH = re.compile(
    r"^(?P<scope>/subscriptions/.+?)/providers/Microsoft\.PolicyInsights"
    r"(?:/(?P<type>[^/]+)(?:/(?P<resource>[^/]+)(?:/(?P<action>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)
_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)$", re.IGNORECASE)
_GROUP = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)$", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def is_policy_path(path: str) -> bool:
    """Tell whether an ARM path is in the Microsoft.PolicyInsights namespace."""
    return _PATH.match(path) is not None


def served_api_version(path: str, default: str) -> str:
    """The api-version the sandbox serves for ``path`` (``default``: Sentinel's)."""
    return POLICY_API_VERSION if is_policy_path(path) else default


def _scope_kind(scope: str) -> str:
    """``Subscription``, ``ResourceGroup`` or ``Resource``: the suffix of operation ids."""
    if _SUBSCRIPTION.match(scope):
        return "Subscription"
    return "ResourceGroup" if _GROUP.match(scope) else "Resource"


def policy_operation(method: str, path: str, query: Mapping[str, str]) -> str:
    """The swagger operation id of a Policy Insights request ("Unknown" if none), for the log."""
    found = _PATH.match(path)
    if found is None:
        return "Unknown"
    kind, action = (found["type"] or "").lower(), (found["action"] or "").lower()
    method = method.upper()
    if kind == "attestations" and found["resource"] and not action:
        verb = {"PUT": "CreateOrUpdateAt", "GET": "GetAt", "DELETE": "DeleteAt"}.get(method)
        return f"Attestations_{verb}{_scope_kind(found['scope'])}" if verb else "Unknown"
    if kind != "policystates" or method != "POST" or action != "queryresults":
        return "Unknown"
    if any(key.lower() == "$skiptoken" for key in query):
        return "PolicyStates_NextLink"
    return f"PolicyStates_ListQueryResultsFor{_scope_kind(found['scope'])}"


def _scope(scope: str) -> dict[str, str]:
    """The record fields a queryResults scope path pins; 400 for a malformed subscription."""
    subscription = scope.split("/")[2]
    if not _GUID.match(subscription):
        message = f"The provided subscription identifier '{subscription}' is malformed or invalid."
        raise ArmError(400, "InvalidSubscriptionId", message)
    if _SUBSCRIPTION.match(scope):
        return {"subscriptionId": subscription}
    group = _GROUP.match(scope)
    if group is not None:
        return {"subscriptionId": subscription, "resourceGroup": group["rg"]}
    return {"resourceId": scope}


def _next_link(request: web.Request, token: str | None) -> str | None:
    """This request's path with its api-version and ``$skiptoken`` only, as the swagger's
    PolicyStates_NextLink declares (the token holds the query); None on the last page."""
    if token is None:
        return None
    params = [(k, v) for k, v in request.query.items() if k.lower() == "api-version"]
    params.append(("$skiptoken", token))
    return str(request.url.origin().with_path(request.path).with_query(params))


def _render(record: dict[str, Any], context: str) -> dict[str, Any]:
    """A record as the service answers it, with its ``@odata`` annotations."""
    return {"@odata.id": None, "@odata.context": f"{context}/$entity", **record}


async def policy_insights(states: PolicyStates, request: web.Request) -> web.Response:
    """Answer one Policy Insights request (the sandbox middleware has already run)."""
    found = _PATH.match(request.path)
    kind = (found["type"] or "").lower() if found else ""
    action = (found["action"] or "").lower() if found else ""
    if found is not None and kind == "attestations" and found["resource"] and not action:
        return await _attestation(states, request, found["scope"], found["resource"])
    if found is None or kind != "policystates" or action != "queryresults":
        message = (
            "The resource type could not be found in the namespace "
            f"'Microsoft.PolicyInsights' for api version '{POLICY_API_VERSION}'."
        )
        raise ArmError(404, "InvalidResourceType", message)
    return await _query_results(states, request, found)


async def _attestation(
    states: PolicyStates, request: web.Request, scope: str, name: str
) -> web.Response:
    """Attestations_CreateOrUpdate / _Get / _Delete at any scope."""
    _scope(scope)  # 400 for a malformed subscription id
    store = states.attestations
    if request.method == "PUT":
        now = states.now()
        answer, created = store.put(scope, name, request_json(request), now)
        apply_to_states(states.records, scope, answer, answer["systemData"]["lastModifiedAt"])
        return web.json_response(answer, status=201 if created else 200)
    if request.method == "GET":
        return web.json_response(store.get(scope, name))
    if request.method == "DELETE":
        return web.Response(status=200 if store.delete(scope, name) else 204)
    message = f"The requested resource does not support http method '{request.method}'."
    raise ArmError(405, "MethodNotAllowed", message, {"Allow": "GET, PUT, DELETE"})


async def _query_results(
    states: PolicyStates, request: web.Request, found: re.Match[str]
) -> web.Response:
    """PolicyStates_ListQueryResultsFor* and PolicyStates_NextLink: one page."""
    if request.method != "POST":
        message = f"The requested resource does not support http method '{request.method}'."
        raise ArmError(405, "MethodNotAllowed", message, {"Allow": "POST"})
    resource = found["resource"] or ""
    if resource.lower() not in ("latest", "default"):
        message = f"The policy states resource '{resource}' is not valid: use latest or default."
        raise ArmError(400, "InvalidPolicyStatesResource", message)
    scope = _scope(found["scope"])
    query = {key.lower(): value for key, value in request.query.items()}
    try:
        items, token = states.query(
            scope, query.get("$filter"), query.get("$top"), query.get("$skiptoken")
        )
    except ODataError as exc:
        raise ArmError(400, "InvalidQueryParameterValue", str(exc)) from None
    subscription = found["scope"].split("/")[2]
    origin = request.url.origin()
    context = (
        f"{origin}/subscriptions/{subscription}/providers/Microsoft.PolicyInsights/"
        f"policyStates/$metadata#{resource.lower()}"
    )
    body = {
        "@odata.context": context,
        "@odata.count": len(items),
        "value": [_render(item, context) for item in items],
        "@odata.nextLink": _next_link(request, token),
    }
    return web.json_response(body)


# The control API.


async def _object(request: web.Request) -> dict[str, Any]:
    """The JSON object body (an empty one for none); 400 otherwise."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ArmError(400, "BadRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ArmError(400, "BadRequest", "The body must be a JSON object")
    return body


class _PolicyControl:
    """Control handlers over one sandbox's policy states."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    async def list_states(self, request: web.Request) -> web.Response:
        """Every stored record."""
        return web.json_response({"value": list(self.sandbox.policy.records.values())})

    async def put_state(self, request: web.Request) -> web.Response:
        """Store (add or replace) one record."""
        try:
            record, created = self.sandbox.policy.put(await _object(request))
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return web.json_response(record, status=201 if created else 200)

    async def flip_state(self, request: web.Request) -> web.Response:
        """Change the compliance of a resource under an assignment, as a re-evaluation."""
        body = await _object(request)
        resource, assignment, state, reference = (
            body.get(name)
            for name in (
                "resourceId",
                "policyAssignmentId",
                "complianceState",
                "policyDefinitionReferenceId",
            )
        )
        given = (resource, assignment, state)
        if not all(isinstance(v, str) and v for v in given) or not isinstance(
            reference, (str, type(None))
        ):
            message = "the body needs resourceId, policyAssignmentId and complianceState"
            raise ArmError(400, "BadRequest", message)
        try:
            changed = self.sandbox.policy.set_compliance(
                str(resource), str(assignment), str(state), reference
            )
        except KeyError as exc:
            raise ArmError(404, "ResourceNotFound", str(exc.args[0])) from None
        return web.json_response({"value": changed})

    async def seed(self, request: web.Request) -> web.Response:
        """Add generated NonCompliant records."""
        body = await _object(request)
        count, subscription = body.get("count", 1), body.get("subscriptionId", str(uuid.uuid4()))
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 10_000:
            raise ArmError(400, "BadRequest", "count must be an integer from 1 to 10000")
        return web.json_response(
            {"value": self.sandbox.seed_policy_states(count, subscription=str(subscription))},
            status=201,
        )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors raised by a control handler into CloudError answers."""
    try:
        return await handler(request)
    except SandboxError as err:
        return err.to_response()


def add_policy_control_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Mount the policy control API on ``app`` under ``/_sandbox/policy/``."""
    routes = _PolicyControl(sandbox)
    control = web.Application(middlewares=[_errors])
    control.router.add_route("GET", "/states", routes.list_states)
    control.router.add_route("POST", "/states", routes.put_state)
    control.router.add_route("PATCH", "/states", routes.flip_state)
    control.router.add_route("POST", "/seed", routes.seed)
    app.add_subapp("/_sandbox/policy/", control)


def seed_states(
    states: PolicyStates, count: int, subscription: str, random_seed: int | None, now: Any
) -> list[dict[str, Any]]:
    """Add ``count`` generated NonCompliant records in ``subscription``; returns them."""
    rng = random.Random(random_seed)  # noqa: S311 - sample data, not secrets
    return [states.put(generate_state(subscription, rng, now))[0] for _ in range(count)]
