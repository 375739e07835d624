"""Azure Resource Graph (``Microsoft.ResourceGraph/resources``, api-version 2022-10-01) data.

The ARM sandbox keeps a ``Resources`` table and answers the ``Resources`` operation
(``POST /providers/Microsoft.ResourceGraph/resources``) as the service does:

* a small KQL subset, each stage after ``|``: ``Resources`` (the only table), ``where <column>
  ==|=~|!=|!~ '<text>'``, ``project a, b``, ``order by|sort by <column> [asc|desc]`` and
  ``limit|take <n>``; anything else is refused with the service's 400 (``BadRequest`` with
  ``InvalidQuery`` and ``ParserFailure`` details, or ``FailedToResolveScalarExpression``);
* ``options.$top`` (default 100, at most 1000), ``$skip`` and ``$skipToken`` (opaque; bound
  to the query and scope that made it), ``resultFormat`` ``objectArray`` (default) or ``table``;
* the answer ``{totalRecords, count, data, facets, resultTruncated, $skipToken?}``;
* the per-user quota: ``quota_limit`` queries per ``quota_window`` seconds per client, told in
  ``x-ms-user-quota-remaining`` / ``x-ms-user-quota-resets-after`` (``hh:mm:ss``); a query over
  it is answered 429 ``RateLimiting``.

Seeded resources look like a real tenant's: several subscriptions, common resource types, and
owner/environment tags that are missing, differently spelled or inconsistent.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.arm_resourcegraph_seed import SEED_SUBSCRIPTIONS, generate_resource

RESOURCE_GRAPH_API_VERSION = "2022-10-01"
"""The Resource Graph api-version the sandbox serves."""

DEFAULT_TOP = 100
MAX_TOP = 1000


class ResourceGraphError(Exception):
    """A query the service refuses: status, code, message and ``details`` as it sends them."""

    def __init__(
        self,
        status: int,
        code: str,
        details: list[dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the refusal; the message is the service's "provide below info" line."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        message = (
            "Please provide below info when asking for support: "
            f"timestamp = {stamp}, correlationId = {uuid.uuid4()}."
        )
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


_INVALID = {
    "code": "InvalidQuery",
    "message": "Query is invalid. Please refer to the documentation for the Azure Resource "
    "Graph service and fix the error before retrying.",
}


def parser_failure(token: str, position: int) -> ResourceGraphError:
    """The 400 of a query the KQL parser cannot read at ``token``."""
    detail = {
        "code": "ParserFailure",
        "message": f"ParserFailure: unexpected token '{token}'",
        "line": 1,
        "characterPositionInLine": position,
        "token": token,
    }
    return ResourceGraphError(400, "BadRequest", [dict(_INVALID), detail])


def unknown_column(name: str) -> ResourceGraphError:
    """The 400 of a query naming a column the table does not have."""
    detail = {
        "code": "FailedToResolveScalarExpression",
        "message": f"Failed to resolve scalar expression named '{name}'",
    }
    return ResourceGraphError(400, "BadRequest", [dict(_INVALID), detail])


def bad_request(code: str, message: str) -> ResourceGraphError:
    """A 400 about the request rather than the query (options, scope, skip token)."""
    return ResourceGraphError(400, "BadRequest", [{"code": code, "message": message}])


@dataclass
class Quota:
    """The per-user query quota: ``limit`` queries per ``window`` seconds for each client."""

    limit: int = 15
    window: float = 5.0
    _used: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, client: str, now: float) -> tuple[bool, int, float]:
        """Count one query of ``client``; (allowed, remaining, seconds until the reset)."""
        started, used = self._used.get(client, (now, 0))
        if now - started >= self.window:
            started, used = now, 0
        allowed = used < self.limit
        used = used + 1 if allowed else used
        self._used[client] = (started, used)
        return allowed, self.limit - used, max(0.0, started + self.window - now)

    def clear(self) -> None:
        """Forget every client's usage."""
        self._used.clear()


def resets_after(seconds: float) -> str:
    """``hh:mm:ss`` as ``x-ms-user-quota-resets-after`` spells it (rounded up)."""
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class Plan:
    """A parsed query: filters, projection, order and limit."""

    filters: list[tuple[str, str, str]] = field(default_factory=list)
    columns: list[str] | None = None
    order: tuple[str, bool] | None = None
    limit: int | None = None


_STAGE = re.compile(
    r"""^(?:
      (?P<where>where)\s+(?P<column>\w+)\s*(?P<op>==|=~|!=|!~)\s*(?P<q>['"])(?P<value>[^'"]*)(?P=q)
    | (?P<project>project)\s+(?P<names>\w+(?:\s*,\s*\w+)*)
    | (?P<order>order\s+by|sort\s+by)\s+(?P<key>\w+)(?:\s+(?P<dir>asc|desc))?
    | (?P<limit>limit|take)\s+(?P<count>\d+)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_query(text: str, columns: Iterable[str]) -> Plan:
    """The plan of a KQL ``text`` over a table with ``columns``; ``ResourceGraphError``."""
    known = {name.lower(): name for name in columns}
    stages, position = text.split("|"), 0
    head = stages[0].strip()
    if head.lower() != "resources":
        raise parser_failure(head.split(" ")[0] or "|", 0)
    plan = Plan()
    position = len(stages[0]) + 1
    for stage in stages[1:]:
        found = _STAGE.match(stage.strip())
        if found is None:
            token = stage.strip().split(" ")[0] or "|"
            raise parser_failure(token, position + len(stage) - len(stage.lstrip()))
        _apply(plan, found, known)
        position += len(stage) + 1
    return plan


def _column(known: dict[str, str], name: str) -> str:
    """The table's spelling of a column (KQL names are case-sensitive; ARG's are not here)."""
    if name.lower() not in known:
        raise unknown_column(name)
    return known[name.lower()]


def _apply(plan: Plan, found: re.Match[str], known: dict[str, str]) -> None:
    """Add one parsed stage to ``plan``."""
    if found["where"]:
        plan.filters.append((_column(known, found["column"]), found["op"], found["value"]))
    elif found["project"]:
        plan.columns = [_column(known, n.strip()) for n in found["names"].split(",")]
    elif found["order"]:
        plan.order = (_column(known, found["key"]), (found["dir"] or "asc").lower() == "desc")
    else:
        plan.limit = int(found["count"])


def _matches(row: dict[str, Any], filters: list[tuple[str, str, str]]) -> bool:
    """True when ``row`` passes every ``where``."""
    for column, op, value in filters:
        cell = "" if row.get(column) is None else str(row.get(column))
        same = cell.lower() == value.lower() if "~" in op else cell == value
        if same != op.startswith(("==", "=~")):
            return False
    return True


def skip_token(offset: int, fingerprint: str) -> str:
    """An opaque ``$skipToken`` for the row at ``offset`` of the query ``fingerprint``."""
    raw = json.dumps({"o": offset, "f": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_skip_token(token: str, fingerprint: str) -> int:
    """The offset in ``token``; ``ResourceGraphError`` when it is not one of this query's."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))
        offset, made_for = int(value["o"]), value["f"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("InvalidSkipToken", "The skip token is not valid.") from None
    if made_for != fingerprint or offset < 0:
        message = "The skip token was issued for another query or scope."
        raise bad_request("InvalidSkipToken", message)
    return offset


COLUMNS = (
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
)
"""The columns of the ``Resources`` table, in its order."""


class ResourceGraph:
    """The sandbox's ``Resources`` table, its quota and the query it answers."""

    def __init__(self, tenant_id: str, clock: Callable[[], float]) -> None:
        """An empty table in ``tenant_id``; ``clock`` (epoch seconds) drives the quota."""
        self.tenant_id = tenant_id
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}
        self.quota = Quota()

    def put(self, row: dict[str, Any]) -> dict[str, Any]:
        """Add or replace one resource (keyed by its id, case-insensitively); returns it."""
        complete = {name: row.get(name) for name in COLUMNS}
        if not isinstance(complete["id"], str) or not complete["id"].startswith("/subscriptions/"):
            raise ValueError("a resource needs an id /subscriptions/{id}/...")
        parts = complete["id"].split("/")
        complete["subscriptionId"] = complete["subscriptionId"] or parts[2]
        complete["name"] = complete["name"] or parts[-1]
        complete["tenantId"] = complete["tenantId"] or self.tenant_id
        self.rows[complete["id"].lower()] = complete
        return complete

    def remove(self, resource_id: str) -> bool:
        """Delete a resource; False when there was none."""
        return self.rows.pop(resource_id.lower(), None) is not None

    def clear(self) -> None:
        """Empty the table and the quota."""
        self.rows.clear()
        self.quota.clear()

    def seed(self, count: int, *, random_seed: int | None = 0, subscriptions: int = 4) -> int:
        """Add ``count`` realistic resources over ``subscriptions`` subscriptions; the count."""
        rng = random.Random(random_seed)  # noqa: S311 - sample data, not secrets
        chosen = SEED_SUBSCRIPTIONS[: max(1, min(subscriptions, len(SEED_SUBSCRIPTIONS)))]
        start = len(self.rows)
        for number in range(start, start + count):
            self.put(generate_resource(rng, number, chosen, self.tenant_id))
        return count

    def query(self, body: Any) -> dict[str, Any]:
        """Answer one ``Resources`` request body; ``ResourceGraphError`` when refused."""
        request = _request(body)
        plan = parse_query(request.query, COLUMNS)
        rows = [r for r in self.rows.values() if _in_scope(r, request.subscriptions)]
        rows = [r for r in rows if _matches(r, plan.filters)]
        if plan.order is not None:
            column, descending = plan.order
            rows.sort(key=lambda r: str(r.get(column) or "").lower(), reverse=descending)
        if plan.limit is not None:
            rows = rows[: plan.limit]
        fingerprint = hashlib.sha256(
            json.dumps([request.query, sorted(request.subscriptions or [])]).encode()
        ).hexdigest()[:16]
        offset = request.skip
        if request.skip_token is not None:
            offset = read_skip_token(request.skip_token, fingerprint)
        page = rows[offset : offset + request.top]
        names = plan.columns or list(COLUMNS)
        data: Any = [{name: row.get(name) for name in names} for row in page]
        if request.result_format == "table":
            data = {
                "columns": [{"name": n, "type": "string"} for n in names],
                "rows": [[item[n] for n in names] for item in data],
            }
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "data": data,
            "facets": [],
            "resultTruncated": "false",
        }
        if offset + len(page) < len(rows):
            answer["$skipToken"] = skip_token(offset + len(page), fingerprint)
        return answer


@dataclass(frozen=True)
class _Request:
    query: str
    subscriptions: list[str] | None
    top: int
    skip: int
    skip_token: str | None
    result_format: str


def _request(body: Any) -> _Request:
    """The checked parts of a ``QueryRequest`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise bad_request("InvalidRequestContent", "The request must carry a 'query' string.")
    subscriptions = body.get("subscriptions")
    if subscriptions is not None and (
        not isinstance(subscriptions, list) or not all(isinstance(s, str) for s in subscriptions)
    ):
        raise bad_request("InvalidRequestContent", "'subscriptions' must be an array of ids.")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise bad_request("InvalidRequestContent", "'options' must be an object.")
    top, skip = options.get("$top", DEFAULT_TOP), options.get("$skip", 0)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
        raise bad_request("InvalidQueryOptions", f"$top must be from 1 to {MAX_TOP}.")
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise bad_request("InvalidQueryOptions", "$skip must be a non-negative integer.")
    token = options.get("$skipToken")
    result_format = options.get("resultFormat", "objectArray")
    if result_format not in ("objectArray", "table"):
        raise bad_request("InvalidQueryOptions", "resultFormat must be objectArray or table.")
    return _Request(
        body["query"],
        [s.lower() for s in subscriptions] if subscriptions is not None else None,
        top,
        skip,
        token if isinstance(token, str) and token else None,
        result_format,
    )


def _in_scope(row: dict[str, Any], subscriptions: list[str] | None) -> bool:
    """True when the row's subscription is asked for (every one when none is named)."""
    return subscriptions is None or str(row["subscriptionId"]).lower() in subscriptions
