"""Routes of the ServiceNow sandbox: the Table API and the OAuth token endpoint.

``/api/now/table/{table}[/{sys_id}]`` (also under ``/api/now/v2/``) with GET, POST, PUT,
PATCH and DELETE, answering ``{"result": ...}``; ``POST /oauth_token.do`` with the
client-credentials (or password) grant. Authentication, faults and the rate limit run in
``sandbox.servicenow_http`` before any of these.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from sandbox.servicenow_http import USER_KEY, ServiceNowError
from sandbox.servicenow_query import run_query
from sandbox.servicenow_render import Output
from sandbox.servicenow_store import Record
from sandbox.servicenow_tables import TABLES, display_field, reference_target

if TYPE_CHECKING:
    from sandbox.servicenow import ServiceNowSandbox

TOKEN_LIFETIME = 1799
"""Seconds an access token lives (the instance default)."""

_TABLE = "/api/now{version:(/v[0-9]+)?}/table/{table}"


def _true(request: web.Request, name: str) -> bool:
    """Tell whether a boolean sysparm is "true"."""
    return request.query.get(name, "false").lower() == "true"


def _int(request: web.Request, name: str, default: int, minimum: int) -> int:
    """Return an integer sysparm, or ``default`` when it is absent or not a valid number."""
    try:
        value = int(request.query.get(name, ""))
    except ValueError:
        return default
    return value if value >= minimum else default


def _output(sandbox: ServiceNowSandbox, request: web.Request) -> Output:
    """Return the output options of a request."""
    mode = request.query.get("sysparm_display_value", "false").lower()
    fields = request.query.get("sysparm_fields", "")
    return Output(
        base_url=sandbox.url,
        display_value=mode if mode in ("true", "all") else "false",
        exclude_reference_link=_true(request, "sysparm_exclude_reference_link"),
        fields=tuple(f.strip() for f in fields.split(",") if f.strip()),
    )


def _table(sandbox: ServiceNowSandbox, request: web.Request, *, reading: bool) -> str:
    """Return the addressed table, or raise 400 (unknown) or 403 (read denied)."""
    table = request.match_info["table"]
    if table not in TABLES:
        raise ServiceNowError(400, f"Invalid table {table}", None)
    if reading and table in sandbox.denied_tables:
        raise ServiceNowError(403, "User Not Authorized", "Failed API level ACL Validation")
    return table


def _record(sandbox: ServiceNowSandbox, table: str, sys_id: str) -> Record:
    """Return the addressed record or raise the 404 an instance gives."""
    found = sandbox.store.get(table, sys_id)
    if found is None:
        raise ServiceNowError(
            404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
        )
    return found


async def _body(sandbox: ServiceNowSandbox, request: web.Request, table: str) -> dict[str, Any]:
    """Return the JSON object a write sends (400 otherwise); note contract drift."""
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise ServiceNowError(
            400, "Exception while reading request", "The payload is not valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise ServiceNowError(400, "Exception while reading request", "Invalid payload")
    sandbox.check_request(body)
    if _true(request, "sysparm_input_display_value"):
        return {k: _input_value(sandbox, table, k, v) for k, v in body.items()}
    return body


def _input_value(sandbox: ServiceNowSandbox, table: str, name: str, value: object) -> object:
    """Return the sys_id a reference given by display value names (else the value as is)."""
    target = reference_target(table, name)
    if target is None or not isinstance(value, str) or sandbox.store.get(target, value):
        return value
    found = sandbox.store.find(target, display_field(target), value)
    return value if found is None else found["sys_id"]


def _answer(
    sandbox: ServiceNowSandbox,
    operation: str,
    status: int,
    result: Any,
    output: Output,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Return a ``{"result": ...}`` answer, checked against the contract first."""
    body = {"result": result}
    if output.display_value != "all":
        sandbox.check_answer(operation, status, body)
    return web.json_response(body, status=status, headers=headers)


def _links(sandbox: ServiceNowSandbox, request: web.Request, total: int, limit: int) -> str:
    """Return the RFC 5988 Link header of a page: first, prev, next, last."""
    offset = _int(request, "sysparm_offset", 0, 0)

    def link(at: int, rel: str) -> str:
        """Return one link repeating the query with another offset."""
        query = {**request.query, "sysparm_limit": str(limit), "sysparm_offset": str(at)}
        return f'<{sandbox.url}{request.path}?{urlencode(query)}>;rel="{rel}"'

    last = max(0, (total - 1) // limit * limit)
    links = [link(0, "first")]
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    return ",".join(links)


def add_table_routes(app: web.Application, sandbox: ServiceNowSandbox) -> None:
    """Add the Table API and ``/oauth_token.do`` to an application."""

    async def list_records(request: web.Request) -> web.Response:
        """GET /api/now/table/{table}: a page of the records a query selects."""
        table = _table(sandbox, request, reading=True)
        selected = run_query(
            sandbox.store.all(table),
            table,
            request.query.get("sysparm_query", ""),
            sandbox.store.get,
            invalid_returns_no_rows=sandbox.invalid_query_returns_no_rows,
        )
        limit = _int(request, "sysparm_limit", sandbox.page_size, 1)
        offset = _int(request, "sysparm_offset", 0, 0)
        output = _output(sandbox, request)
        page = [sandbox.renderer.render(table, r, output) for r in selected[offset:][:limit]]
        headers = {}
        if not _true(request, "sysparm_no_count"):
            headers["X-Total-Count"] = str(len(selected))
        if not _true(request, "sysparm_suppress_pagination_header"):
            headers["Link"] = _links(sandbox, request, len(selected), limit)
        return _answer(sandbox, "table_List", 200, page, output, headers)

    async def create(request: web.Request) -> web.Response:
        """POST /api/now/table/{table}: insert a record, answer 201 with it."""
        table = _table(sandbox, request, reading=False)
        values = await _body(sandbox, request, table)
        record = sandbox.insert(table, values, request[USER_KEY])
        location = f"{sandbox.url}/api/now/table/{table}/{record['sys_id']}"
        output = _output(sandbox, request)
        rendered = sandbox.renderer.render(table, record, output)
        return _answer(sandbox, "table_Create", 201, rendered, output, {"Location": location})

    async def get_one(request: web.Request) -> web.Response:
        """GET /api/now/table/{table}/{sys_id}: one record."""
        table = _table(sandbox, request, reading=True)
        record = _record(sandbox, table, request.match_info["sys_id"])
        output = _output(sandbox, request)
        return _answer(
            sandbox, "table_Get", 200, sandbox.renderer.render(table, record, output), output
        )

    async def update(request: web.Request) -> web.Response:
        """PUT or PATCH /api/now/table/{table}/{sys_id}: update the supplied fields."""
        table = _table(sandbox, request, reading=False)
        record = _record(sandbox, table, request.match_info["sys_id"])
        values = await _body(sandbox, request, table)
        suppress = _true(request, "sysparm_suppress_auto_sys_field")
        sandbox.update(record, values, request[USER_KEY], suppress_auto_fields=suppress)
        output = _output(sandbox, request)
        operation = "table_Put" if request.method == "PUT" else "table_Patch"
        rendered = sandbox.renderer.render(table, record, output)
        return _answer(sandbox, operation, 200, rendered, output)

    async def delete(request: web.Request) -> web.Response:
        """DELETE /api/now/table/{table}/{sys_id}: remove the record, 204 without a body."""
        table = _table(sandbox, request, reading=False)
        sandbox.store.delete(_record(sandbox, table, request.match_info["sys_id"]))
        return web.Response(status=204)

    async def token(request: web.Request) -> web.Response:
        """POST /oauth_token.do: issue a Bearer token for the client (and user) it proves."""
        form = await request.post()
        client_id, client_secret = (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        grant = str(form.get("grant_type", ""))
        if grant not in ("client_credentials", "password"):
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": grant}, status=400
            )
        good_client = hmac.compare_digest(client_id, sandbox.client_id) and hmac.compare_digest(
            client_secret, sandbox.client_secret
        )
        good_user = grant == "client_credentials" or (
            hmac.compare_digest(str(form.get("username", "")), sandbox.username)
            and hmac.compare_digest(str(form.get("password", "")), sandbox.password)
        )
        if not (good_client and good_user):
            return web.json_response(
                {"error_description": "access_denied", "error": "server_error"}, status=401
            )
        access = secrets.token_urlsafe(48)
        sandbox.add_token(access, sandbox.username, TOKEN_LIFETIME)
        answer = {
            "access_token": access,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
        }
        if grant == "password":
            answer["refresh_token"] = secrets.token_urlsafe(48)
        return web.json_response(answer)

    app.router.add_get(_TABLE, list_records)
    app.router.add_post(_TABLE, create)
    app.router.add_get(_TABLE + "/{sys_id}", get_one)
    app.router.add_put(_TABLE + "/{sys_id}", update)
    app.router.add_patch(_TABLE + "/{sys_id}", update)
    app.router.add_delete(_TABLE + "/{sys_id}", delete)
    app.router.add_post("/oauth_token.do", token)
