"""Pure mapping of Table API records into ``ItsmRecord`` and ``ConfigurationItem``.

Every value on the wire is a string (numbers and dates too; empty is ``""``). Warden reads
with ``sysparm_display_value=all``, so a field is usually ``{"value", "display_value"}``
(plus ``link`` for references); a plain string, or a reference ``{"value", "link"}``, is
read too. Date-times are UTC ``YYYY-MM-DD HH:mm:ss``. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.servicenow.fields import state_label
from core.errors import InvalidPayload
from core.itsm import ConfigurationItem, ItsmRecord, ItsmSystem, RecordType


def value(record: dict[str, Any], name: str) -> str:
    """The stored value of field ``name`` ("" when missing or empty)."""
    item = record.get(name)
    if isinstance(item, dict):
        item = item.get("value")
    return item.strip() if isinstance(item, str) else ""


def display(record: dict[str, Any], name: str) -> str:
    """The display value of field ``name``; the stored value when there is none."""
    item = record.get(name)
    if isinstance(item, dict) and isinstance(item.get("display_value"), str):
        return str(item["display_value"]).strip()
    return value(record, name)


def glide_datetime(text: str) -> datetime | None:
    """A stored ``YYYY-MM-DD HH:mm:ss`` (UTC) as an aware datetime; None when empty."""
    if not text:
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise InvalidPayload(f"{text!r} is not a Glide date-time", field="sys_updated_on") from None
    return parsed.replace(tzinfo=UTC)


def small_int(text: str) -> int | None:
    """A choice value like ``"3"`` as an int; None when empty or not a number."""
    try:
        return int(text)
    except ValueError:
        return None


def record_url(instance_url: str, table: str, sys_id: str) -> str:
    """Where a person opens the record in the instance's UI."""
    return f"{instance_url.rstrip('/')}/{table}.do?sys_id={sys_id}"


def record_from_json(record: Any, table: RecordType, instance_url: str) -> ItsmRecord:
    """The ``ItsmRecord`` of one Table API record of ``table``; ``InvalidPayload`` if bad."""
    if not isinstance(record, dict):
        raise InvalidPayload("a ServiceNow record must be a JSON object", field="")
    sys_id, number = value(record, "sys_id"), value(record, "number")
    if not sys_id or not number:
        raise InvalidPayload("a ServiceNow record needs sys_id and number", field="sys_id")
    state = value(record, "state")
    shown = display(record, "state")
    return ItsmRecord(
        system=ItsmSystem.SERVICENOW,
        type=table,
        number=number,
        key=sys_id,
        short_description=display(record, "short_description"),
        state=state,
        state_label=shown if shown != state else state_label(table, state),
        priority=small_int(value(record, "priority")),
        impact=small_int(value(record, "impact")),
        urgency=small_int(value(record, "urgency")),
        updated_at=glide_datetime(value(record, "sys_updated_on")),
        updated_by=value(record, "sys_updated_by"),
        url=record_url(instance_url, table.value, sys_id),
        correlation_id=value(record, "correlation_id"),
        close_code=value(record, "close_code"),
    )


def ci_from_json(record: Any) -> ConfigurationItem:
    """The ``ConfigurationItem`` of one ``cmdb_ci`` record; ``InvalidPayload`` if bad."""
    if not isinstance(record, dict):
        raise InvalidPayload("a CMDB record must be a JSON object", field="")
    sys_id, name = value(record, "sys_id"), display(record, "name")
    if not sys_id or not name:
        raise InvalidPayload("a CMDB record needs sys_id and name", field="sys_id")
    seen = glide_datetime(value(record, "last_discovered") or value(record, "sys_updated_on"))
    if seen is None:
        raise InvalidPayload("a CMDB record needs sys_updated_on", field="sys_updated_on")
    tags = [tag.strip() for tag in display(record, "sys_tags").split(",") if tag.strip()]
    return ConfigurationItem(
        ci_id=sys_id,
        name=name,
        type=value(record, "sys_class_name") or "cmdb_ci",
        owner=display(record, "owned_by") or None,
        env=display(record, "environment") or None,
        tags=tags,
        last_seen_utc=seen,
    )


def ci_matches(record: Any, wanted: set[str]) -> bool:
    """True when a CI's name, FQDN or IP address is among ``wanted`` (lower-cased)."""
    if not isinstance(record, dict):
        return False
    keys = (value(record, "name"), value(record, "fqdn"), value(record, "ip_address"))
    return any(key.lower() in wanted for key in keys if key)


def record_from_webhook(body: Any, instance_url: str) -> ItsmRecord:
    """The record in a business rule's message (``{"table", "sys_id", "record", …}``).

    ``InvalidPayload`` naming the field when it is not one: a table Warden does not link,
    no record, or a record whose ``sys_id`` is not the message's.
    """
    if not isinstance(body, dict):
        raise InvalidPayload("the message must be a JSON object", field="")
    table = body.get("table")
    try:
        kind = RecordType(str(table))
    except ValueError:
        raise InvalidPayload(f"table {table!r} is not one Warden links", field="table") from None
    record = record_from_json(body.get("record"), kind, instance_url)
    if body.get("sys_id") not in (None, record.key):
        raise InvalidPayload("sys_id differs from the record's", field="sys_id")
    return record
