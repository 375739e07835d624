"""Graph security routes of the Graph sandbox: Defender XDR incidents, comments, alerts_v2.

``GET   /v1.0/security/incidents``                 List incidents: ``$filter`` on
        ``lastUpdateDateTime`` (``ge``/``gt``, a DateTimeOffset), ``$expand=alerts``,
        ``$top`` 1..50 (default 50), further pages by ``@odata.nextLink`` (``$skiptoken``)
``GET   /v1.0/security/incidents/{id}``            Get incident (``$expand=alerts``)
``PATCH /v1.0/security/incidents/{id}``            Update incident: ``WRITABLE`` properties
        only, enum values checked, a determination must fit the classification; 200 with
        the incident
``POST  /v1.0/security/incidents/{id}/comments``   Create comment (an ``alertComment``);
        200 with every comment of the incident
``GET   /v1.0/security/alerts_v2``                 List alerts (``$filter=incidentId eq '…'``)

Reads need ``SecurityIncident.Read.All`` (alerts: ``SecurityAlert.Read.All``) or the
ReadWrite role; writes need ``SecurityIncident.ReadWrite.All`` (checked by
``sandbox.graph_api``). A read-only incident answers writes with 403. Faults, throttling
(a queued 429 with ``Retry-After``) and the request log are the Graph sandbox's own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from sandbox.arm_http import BODY_KEY, CLAIMS_KEY, Body
from sandbox.arm_records import GraphError
from sandbox.graph_security_store import (
    CLASSIFICATIONS,
    DETERMINATIONS,
    STATUSES,
    WRITABLE,
    DefenderIncident,
    parse_instant,
)

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

READ_ROLES = frozenset({"SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"})
WRITE_ROLES = frozenset({"SecurityIncident.ReadWrite.All"})
ALERT_ROLES = frozenset({"SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"})
MAX_TOP = 50
_SINCE = re.compile(r"^\s*lastUpdateDateTime\s+(ge|gt)\s+(\S+)\s*$", re.IGNORECASE)
_INCIDENT_OF = re.compile(r"^\s*incidentId\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def security_roles(method: str, path: str) -> frozenset[str]:
    """The application roles that may make this call."""
    if path.startswith("/v1.0/security/alerts_v2"):
        return ALERT_ROLES
    return READ_ROLES if method in ("GET", "HEAD") else WRITE_ROLES


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _page_args(request: web.Request) -> tuple[int, int]:
    """``$top`` and the offset of ``$skiptoken``; 400 for what Graph refuses."""
    try:
        top = int(request.query.get("$top", MAX_TOP))
        skip = int(request.query.get("$skiptoken", "0"))
    except ValueError:
        raise _bad("Invalid paging parameter.") from None
    if not 1 <= top <= MAX_TOP or skip < 0:
        raise _bad(f"$top must be between 1 and {MAX_TOP}.")
    return top, skip


def _expand_alerts(request: web.Request) -> bool:
    """True for ``$expand=alerts``; 400 for any other expansion."""
    expand = request.query.get("$expand")
    if expand is None:
        return False
    if expand.strip().lower() != "alerts":
        raise _bad(f"Could not find a property named '{expand}' on type incident.")
    return True


def _incident(sandbox: GraphSandbox, request: web.Request) -> DefenderIncident:
    found = sandbox.security.get(request.match_info["incidentId"])
    if found is None:
        raise GraphError(404, "NotFound", "Incident not found.")
    return found


def _writer(sandbox: GraphSandbox, request: web.Request, incident: DefenderIncident) -> str:
    """The name writes are attributed to; 403 for an incident Warden may not update."""
    if incident.read_only:
        raise GraphError(403, "Forbidden", "The app is not allowed to update this incident.")
    claims = request.get(CLAIMS_KEY) or {}
    return str(sandbox.arm.author_for(claims).get("name") or "Warden")


def _checked_changes(body: Body, incident: DefenderIncident) -> dict[str, Any]:
    """The PATCH body's changes, as Graph would accept them; 400 otherwise."""
    if body.error is not None:
        raise body.error
    changes = body.value
    if not isinstance(changes, dict) or not changes:
        raise _bad("The request body must be a non-empty incident object.")
    changes = {k: v for k, v in changes.items() if not k.startswith("@odata.")}
    unknown = sorted(set(changes) - set(WRITABLE))
    if unknown:
        raise _bad(f"Property '{unknown[0]}' cannot be updated.")
    for name, allowed in (("status", STATUSES), ("classification", CLASSIFICATIONS)):
        if name in changes and changes[name] not in allowed:
            raise _bad(f"Invalid value '{changes[name]}' for property '{name}'.")
    tags = changes.get("customTags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad("customTags must be a collection of strings.")
    classification = changes.get("classification", incident.resource.get("classification"))
    determination = changes.get("determination")
    if determination is not None and determination not in DETERMINATIONS.get(
        str(classification), set()
    ):
        raise _bad(f"Determination '{determination}' does not fit '{classification}'.")
    return changes


def _list_page(sandbox: GraphSandbox, request: web.Request) -> dict[str, Any]:
    """One page of List incidents."""
    query = request.query.get("$filter")
    strict, since = False, None
    if query is not None:
        matched = _SINCE.match(query)
        if matched is None:
            raise _bad("Invalid filter clause: only lastUpdateDateTime ge|gt is supported.")
        try:
            since = parse_instant(matched.group(2))
        except ValueError:
            raise _bad(f"The DateTimeOffset '{matched.group(2)}' is not valid.") from None
        strict = matched.group(1).lower() == "gt"
    expand = _expand_alerts(request)
    top, skip = _page_args(request)
    found = (
        sandbox.security.updated_since(since, strict=strict)
        if since is not None
        else sandbox.security.updated_since(_EPOCH, strict=False)
    )
    page = found[skip : skip + top]
    answer: dict[str, Any] = {
        "@odata.context": f"{sandbox.graph_url}/$metadata#security/incidents",
        "value": [item.render(expand_alerts=expand) for item in page],
    }
    if skip + top < len(found):
        params = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        params.update({"$top": str(top), "$skiptoken": str(skip + top)})
        query_text = "&".join(f"{k}={quote(v, safe='$:')}" for k, v in params.items())
        answer["@odata.nextLink"] = f"{sandbox.graph_url}/security/incidents?{query_text}"
    return answer


def add_security_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register the Graph security routes on ``app``."""

    async def list_incidents(request: web.Request) -> web.Response:
        """200 with a page of incidents."""
        return web.json_response(_list_page(sandbox, request))

    async def get_incident(request: web.Request) -> web.Response:
        """200 with one incident."""
        found = _incident(sandbox, request)
        return web.json_response(found.render(expand_alerts=_expand_alerts(request)))

    async def update_incident(request: web.Request) -> web.Response:
        """200 with the updated incident."""
        found = _incident(sandbox, request)
        by = _writer(sandbox, request, found)
        sandbox.security.update(found, _checked_changes(request[BODY_KEY], found), by)
        return web.json_response(found.render())

    async def add_comment(request: web.Request) -> web.Response:
        """200 with the incident's comments."""
        found = _incident(sandbox, request)
        by = _writer(sandbox, request, found)
        body: Body = request[BODY_KEY]
        if body.error is not None:
            raise body.error
        text = body.value.get("comment") if isinstance(body.value, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise _bad("The comment must be a non-empty string.")
        comments = sandbox.security.comment(found, text, by)
        context = f"{sandbox.graph_url}/$metadata#Collection(microsoft.graph.security.alertComment)"
        return web.json_response({"@odata.context": context, "value": comments})

    async def list_alerts(request: web.Request) -> web.Response:
        """200 with the alerts (of one incident)."""
        query, incident_id = request.query.get("$filter"), None
        if query is not None:
            matched = _INCIDENT_OF.match(query)
            if matched is None:
                raise _bad("Invalid filter clause: only incidentId eq '…' is supported.")
            incident_id = matched.group(1).replace("''", "'")
        top, skip = _page_args(request)
        alerts = sandbox.security.alerts(incident_id)[skip : skip + top]
        context = f"{sandbox.graph_url}/$metadata#security/alerts_v2"
        return web.json_response({"@odata.context": context, "value": alerts})

    base = "/v1.0/security/incidents"
    app.router.add_get(base, list_incidents, name="ListIncidents")
    app.router.add_get(base + "/{incidentId}", get_incident, name="GetIncident")
    app.router.add_patch(base + "/{incidentId}", update_incident, name="UpdateIncident")
    app.router.add_post(base + "/{incidentId}/comments", add_comment, name="CreateIncidentComment")
    app.router.add_get("/v1.0/security/alerts_v2", list_alerts, name="ListAlertsV2")


_EPOCH = parse_instant("1970-01-01T00:00:00Z")
