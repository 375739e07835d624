"""Encoded queries (``sysparm_query``) built safely, and the field lists Warden reads.

An encoded query joins conditions with ``^``; ServiceNow has no reliable escape for it, so
a value holding ``^``, a newline or another control character is refused (``ValueError``)
rather than escaped: it could add conditions (``^OR…``, ``^NQ…``) or, worse, make the query
invalid, which ServiceNow silently ignores and answers with every record. ``IN`` lists are
comma-separated, so their values may not hold a comma either. Field names come from an
allow-list per table: an unknown field is also silently ignored by ServiceNow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from core.itsm import RecordType

CMDB_CI = "cmdb_ci"
"""The base table of configuration items."""

SYS_USER = "sys_user"
"""The users table (read only: a CI's ``owned_by`` references one)."""

_RECORD_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "impact",
    "urgency",
    "correlation_id",
    "correlation_display",
    "close_code",
    "close_notes",
    "active",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
)
_CHANGE_FIELDS = (*_RECORD_FIELDS, "type", "approval", "start_date", "end_date", "risk")
_CI_FIELDS = (
    "sys_id",
    "name",
    "fqdn",
    "ip_address",
    "sys_class_name",
    "owned_by",
    "environment",
    "sys_tags",
    "last_discovered",
    "sys_updated_on",
    "correlation_id",
    "short_description",
    "install_status",
    "operational_status",
)

FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        RecordType.CHANGE_REQUEST.value: _CHANGE_FIELDS,
        RecordType.INCIDENT.value: _RECORD_FIELDS,
        RecordType.PROBLEM.value: _RECORD_FIELDS,
        RecordType.REQUEST_ITEM.value: _RECORD_FIELDS,
        CMDB_CI: _CI_FIELDS,
        SYS_USER: ("sys_id", "user_name", "email", "active"),
    }
)
"""Table → the fields Warden reads (``sysparm_fields``) and may name in a query."""

WRITABLE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        table: frozenset(names) - {"sys_id", "number", "sys_updated_on", "sys_updated_by"}
        | {"work_notes", "comments", "assignment_group", "assigned_to"}
        for table, names in FIELDS.items()
        if table not in (CMDB_CI, SYS_USER)
    }
)
"""Table → the fields Warden may write."""

_UNSAFE = re.compile(r"[\^\x00-\x1f\x7f]")
_OPERATORS = frozenset({"=", "!=", ">=", "<=", ">", "<", "LIKE", "STARTSWITH", "IN"})


def glide_time(moment: datetime) -> str:
    """A datetime as the Table API stores it: UTC ``YYYY-MM-DD HH:mm:ss`` (naive = UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def check_field(table: str, name: str) -> str:
    """``name`` when ``table`` allows it; ``ValueError`` otherwise (never sent unchecked)."""
    if name not in FIELDS.get(table, ()):
        raise ValueError(f"{name!r} is not a field Warden queries on {table!r}")
    return name


def check_value(value: str, *, listed: bool = False) -> str:
    """``value`` when safe inside an encoded query; ``ValueError`` otherwise."""
    if _UNSAFE.search(value):
        raise ValueError("a query value may not contain '^' or control characters")
    if listed and "," in value:
        raise ValueError("a value in an IN list may not contain ','")
    if not value.strip():
        raise ValueError("a query value may not be empty")
    return value


@dataclass
class Query:
    """An encoded query on one table, built one checked condition at a time."""

    table: str
    _parts: list[str] = field(default_factory=list)

    def where(self, name: str, operator: str, value: str) -> Query:
        """Add ``name <operator> value`` (AND); ``ValueError`` for anything unsafe."""
        if operator not in _OPERATORS or operator == "IN":
            raise ValueError(f"unsupported operator {operator!r}")
        self._parts.append(f"{check_field(self.table, name)}{operator}{check_value(value)}")
        return self

    def where_in(self, names: Iterable[str], values: Iterable[str]) -> Query:
        """Add ``a IN (values)`` OR ``b IN (values)`` … for every name (AND with the rest)."""
        listed = ",".join(check_value(v, listed=True) for v in values)
        if not listed:
            raise ValueError("an IN list needs at least one value")
        clauses = [f"{check_field(self.table, name)}IN{listed}" for name in names]
        self._parts.append("^OR".join(clauses))
        return self

    def order_by(self, name: str, *, descending: bool = False) -> Query:
        """Sort by ``name`` (ascending unless ``descending``)."""
        keyword = "ORDERBYDESC" if descending else "ORDERBY"
        self._parts.append(keyword + check_field(self.table, name))
        return self

    def encoded(self) -> str:
        """The ``sysparm_query`` value."""
        return "^".join(self._parts)


def fields_param(table: str) -> str:
    """The ``sysparm_fields`` value of ``table`` (``ValueError`` for an unknown table)."""
    if table not in FIELDS:
        raise ValueError(f"Warden does not read the table {table!r}")
    return ",".join(FIELDS[table])


def writable(table: str, values: Mapping[str, str]) -> dict[str, str]:
    """``values`` when every field may be written to ``table``; ``ValueError`` names one."""
    allowed = WRITABLE.get(table, frozenset())
    for name in values:
        if name not in allowed:
            raise ValueError(f"{name!r} is not a field Warden writes on {table!r}")
    return {name: str(value) for name, value in values.items()}
