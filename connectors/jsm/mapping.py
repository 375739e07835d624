"""Pure mapping of Jira issues into ``ItsmRecord``s, and the JQL Warden writes.

An issue is ``{"id", "key", "fields": {...}}``; Warden asks for ``FIELDS`` only. Its issue
type maps onto a ``RecordType`` (Change, Incident, Problem; anything else is a request),
its priority name onto 1 (Highest) to 5 (Lowest). Date-times are Jira's
``2026-11-25T09:30:00.000+0000``. Nothing here does I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidPayload
from core.itsm import ItsmRecord, ItsmSystem, RecordType

FIELDS = ("summary", "status", "priority", "issuetype", "updated", "labels")
"""The fields Warden reads of an issue."""

PRIORITIES = {"highest": 1, "high": 2, "medium": 3, "low": 4, "lowest": 5}
TYPES = {
    "change": RecordType.CHANGE_REQUEST,
    "incident": RecordType.INCIDENT,
    "problem": RecordType.PROBLEM,
}
LABEL_PREFIX = "warden-"
"""Requests Warden creates carry the label ``warden-<correlation id>`` (idempotent creates)."""

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_JQL_UNSAFE = re.compile(r'(["\\])')


def jql_string(text: str) -> str:
    """``text`` as a quoted JQL string (quotes and backslashes escaped)."""
    return '"' + _JQL_UNSAFE.sub(r"\\\1", text) + '"'


def jql_time(moment: datetime) -> str:
    """``moment`` as a JQL date-time (UTC, to the minute, as JQL compares): quoted."""
    return '"' + moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") + '"'


def correlation_label(correlation_id: str) -> str:
    """The label that marks the request of ``correlation_id`` (no spaces, at most 255)."""
    return (LABEL_PREFIX + _LABEL_UNSAFE.sub("_", correlation_id))[:255]


def jira_datetime(text: str) -> datetime | None:
    """Jira's ``2026-11-25T09:30:00.000+0000`` as an aware datetime; None when empty."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
    except ValueError:
        raise InvalidPayload(f"{text!r} is not a Jira date-time", field="updated") from None


def _name(fields: dict[str, Any], name: str) -> str:
    item = fields.get(name)
    return str(item.get("name") or "") if isinstance(item, dict) else ""


def record_type(issue_type: str) -> RecordType:
    """The ``RecordType`` an issue type maps onto (a request when none fits better)."""
    return TYPES.get(issue_type.strip().lower(), RecordType.REQUEST_ITEM)


def record_from_issue(issue: Any, browse_url: str) -> ItsmRecord:
    """The ``ItsmRecord`` of one issue; ``InvalidPayload`` naming the field if it is not one."""
    if not isinstance(issue, dict) or not isinstance(issue.get("fields"), dict):
        raise InvalidPayload("a Jira issue must be an object with fields", field="fields")
    key, issue_id, fields = str(issue.get("key") or ""), str(issue.get("id") or ""), issue["fields"]
    if not key or not issue_id:
        raise InvalidPayload("a Jira issue needs id and key", field="key")
    status = fields.get("status") if isinstance(fields.get("status"), dict) else {}
    labels = [str(label) for label in fields.get("labels") or []]
    correlation = next((x[len(LABEL_PREFIX) :] for x in labels if x.startswith(LABEL_PREFIX)), "")
    return ItsmRecord(
        system=ItsmSystem.JSM,
        type=record_type(_name(fields, "issuetype")),
        number=key,
        key=issue_id,
        short_description=str(fields.get("summary") or ""),
        state=str(status.get("id") or ""),
        state_label=str(status.get("name") or ""),
        priority=PRIORITIES.get(_name(fields, "priority").lower()),
        updated_at=jira_datetime(str(fields.get("updated") or "")),
        url=f"{browse_url.rstrip('/')}/browse/{key}",
        correlation_id=correlation,
    )


def issue_key_of_webhook(body: Any) -> str:
    """The key of the issue a webhook is about; ``InvalidPayload`` when it names none."""
    issue = body.get("issue") if isinstance(body, dict) else None
    key = issue.get("key") if isinstance(issue, dict) else None
    if not isinstance(key, str) or not key:
        raise InvalidPayload("the webhook names no issue", field="issue.key")
    return key
