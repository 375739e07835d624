"""The JSM sandbox's REST routes, shaped as Atlassian's REST descriptions say.

* ``GET /rest/api/3/issue/{key}`` (``fields`` selects the fields);
* ``POST /rest/api/3/search/jql`` (``jql``, ``fields``, ``maxResults``, ``nextPageToken``
  → ``issues``, ``nextPageToken`` while more follow, ``isLast``); the retired offset
  search ``/rest/api/3/search`` answers 410 as Jira Cloud now does;
* ``GET``/``POST /rest/api/3/issue/{key}/transitions`` (POST ``{"transition": {"id"}}`` →
  204; a transition not open to the issue → 400);
* ``POST /rest/api/3/issue/{key}/comment`` (the body must be an ADF document);
* ``POST /rest/servicedeskapi/request`` (``serviceDeskId``, ``requestTypeId``,
  ``requestFieldValues``) → 201 with the customer request;
* ``POST /oauth/token`` (client credentials).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.jsm_http import USER_KEY, JiraError
from sandbox.jsm_jql import JqlError, parse
from sandbox.jsm_store import Issue, is_document, transitions_of

if TYPE_CHECKING:
    from sandbox.jsm import JsmSandbox

TOKEN_LIFETIME = 3600
"""Seconds an OAuth access token lives."""

MAX_RESULTS = 100
"""The most issues one search page holds (Jira's own cap depends on the fields asked)."""

_NO_ISSUE = "Issue does not exist or you do not have permission to see it."


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise JiraError(
            400, ["Invalid request payload. Refer to the REST API documentation."]
        ) from None
    if not isinstance(body, dict):
        raise JiraError(400, ["Invalid request payload. Refer to the REST API documentation."])
    return body


def _issue(sandbox: JsmSandbox, request: web.Request) -> Issue:
    found = sandbox.store.get(request.match_info["key"])
    if found is None or found["key"].split("-")[0] in sandbox.hidden_projects:
        raise JiraError(404, [_NO_ISSUE])
    return found


def shaped(sandbox: JsmSandbox, issue: Issue, fields: list[str] | None) -> dict[str, Any]:
    """``issue`` as the API shows it: id, key, self, and the ``fields`` asked for."""
    picked = (
        issue["fields"]
        if fields is None or "*all" in fields
        else {name: issue["fields"][name] for name in fields if name in issue["fields"]}
    )
    return {
        "id": issue["id"],
        "key": issue["key"],
        "self": f"{sandbox.url}/rest/api/3/issue/{issue['id']}",
        "fields": json.loads(json.dumps(picked)),
    }


def _token(sandbox: JsmSandbox, jql: str, offset: int) -> str:
    raw = json.dumps({"q": jql, "o": offset, "s": sandbox.token_salt}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(sandbox: JsmSandbox, jql: str, token: str) -> int:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["q"] == jql and raw["s"] == sandbox.token_salt:
            return int(raw["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise JiraError(400, ["The provided next page token is invalid or expired."])


def add_jsm_routes(app: web.Application, sandbox: JsmSandbox) -> None:
    """Add the REST routes and ``/oauth/token`` to an application."""

    async def get_issue(request: web.Request) -> web.Response:
        fields = request.query.get("fields")
        names = [f.strip() for f in fields.split(",")] if fields else None
        return web.json_response(shaped(sandbox, _issue(sandbox, request), names))

    async def search(request: web.Request) -> web.Response:
        body = await _json(request)
        jql = str(body.get("jql") or "")
        try:
            query = parse(jql)
        except JqlError as exc:
            raise JiraError(400, [str(exc)]) from None
        if not query.predicates:
            raise JiraError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query."
                ],
            )
        limit = max(1, min(int(body.get("maxResults") or 50), MAX_RESULTS))
        token = body.get("nextPageToken")
        offset = _offset(sandbox, jql, str(token)) if token else 0
        visible = [
            i
            for i in sandbox.store.issues.values()
            if i["key"].split("-")[0] not in sandbox.hidden_projects and query.matches(i)
        ]
        selected = query.sort(visible)
        page = selected[offset : offset + limit]
        fields = body.get("fields")
        names = [str(f) for f in fields] if isinstance(fields, list) else []
        answer: dict[str, Any] = {"issues": [shaped(sandbox, i, names) for i in page]}
        more = offset + limit < len(selected)
        if more:
            answer["nextPageToken"] = _token(sandbox, jql, offset + limit)
        answer["isLast"] = not more
        return web.json_response(answer)

    async def retired_search(request: web.Request) -> web.Response:
        raise JiraError(
            410,
            [
                "The requested API has been removed. Please migrate to the "
                "/rest/api/3/search/jql API."
            ],
        )

    async def list_transitions(request: web.Request) -> web.Response:
        issue = _issue(sandbox, request)
        return web.json_response({"expand": "transitions", "transitions": transitions_of(issue)})

    async def do_transition(request: web.Request) -> web.Response:
        issue = _issue(sandbox, request)
        body = await _json(request)
        wanted = body.get("transition")
        transition_id = str(wanted.get("id")) if isinstance(wanted, dict) else ""
        if not transition_id:
            raise JiraError(400, [], {"transition": "Transition id is required."})
        if not sandbox.store.transition(issue, transition_id):
            raise JiraError(
                400,
                [
                    f"Transition id '{transition_id}' is not valid for this issue.",
                ],
            )
        sandbox.changed(issue, "jira:issue_updated")
        return web.Response(status=204)

    async def add_comment(request: web.Request) -> web.Response:
        issue = _issue(sandbox, request)
        body = await _json(request)
        document = body.get("body")
        if not isinstance(document, dict) or not is_document(document):
            raise JiraError(
                400,
                [],
                {
                    "comment": "Operation value must be an Atlassian Document "
                    "(see the Atlassian Document Format)"
                },
            )
        made = sandbox.store.comment(issue, document, request[USER_KEY])
        made["self"] = f"{sandbox.url}/rest/api/3/issue/{issue['id']}/comment/{made['id']}"
        sandbox.changed(issue, "comment_created")
        return web.json_response(made, status=201)

    async def create_request(request: web.Request) -> web.Response:
        body = await _json(request)
        desk = sandbox.service_desks.get(str(body.get("serviceDeskId") or ""))
        if desk is None:
            raise JiraError(404, ["The service desk does not exist or you cannot see it."])
        if str(body.get("requestTypeId") or "") not in desk["requestTypes"]:
            raise JiraError(400, ["The request type does not exist in this service desk."])
        values = body.get("requestFieldValues")
        if not isinstance(values, dict) or not str(values.get("summary") or "").strip():
            raise JiraError(400, [], {"summary": "You must specify a summary of the issue."})
        issue = sandbox.store.create(
            desk["projectKey"],
            str(values["summary"])[:255],
            kind=desk["requestTypes"][str(body["requestTypeId"])],
            description=str(values.get("description") or ""),
            labels=[str(v) for v in values.get("labels") or []],
            priority=str((values.get("priority") or {}).get("name") or "Medium"),
            reporter=request[USER_KEY],
        )
        sandbox.changed(issue, "jira:issue_created")
        return web.json_response(sandbox.customer_request(issue, body), status=201)

    async def oauth_token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            raise JiraError(400, ["unsupported_grant_type"])
        same = hmac.compare_digest(str(form.get("client_id", "")), sandbox.client_id)
        if not same or not hmac.compare_digest(
            str(form.get("client_secret", "")), sandbox.client_secret
        ):
            raise JiraError(401, ["access_denied: Unauthorized"])
        token = secrets.token_urlsafe(24)
        sandbox.tokens[token] = sandbox.clock() + TOKEN_LIFETIME
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}
        )

    app.router.add_get("/rest/api/3/issue/{key}", get_issue)
    app.router.add_post("/rest/api/3/search/jql", search)
    app.router.add_route("*", "/rest/api/3/search", retired_search)
    app.router.add_get("/rest/api/3/issue/{key}/transitions", list_transitions)
    app.router.add_post("/rest/api/3/issue/{key}/transitions", do_transition)
    app.router.add_post("/rest/api/3/issue/{key}/comment", add_comment)
    app.router.add_post("/rest/servicedeskapi/request", create_request)
    app.router.add_post("/oauth/token", oauth_token)
