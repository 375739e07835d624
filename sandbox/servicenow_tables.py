"""The data dictionary of the ServiceNow sandbox: tables, their fields, classes and choices.

A small, fixed slice of a real instance's dictionary (``sys_dictionary``), enough for the
Table API to behave as it does there: every table has the system fields; ``change_request``
and ``incident`` extend ``task``; the CMDB classes extend ``cmdb_ci`` (a request for
``cmdb_ci`` answers every CI, one for ``cmdb_ci_server`` only servers and its subclasses).
Reference fields name the table they point to; journal fields (``work_notes``,
``comments``) are stored in ``sys_journal_field``, never in the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SYSTEM_FIELDS = (
    "sys_id",
    "sys_class_name",
    "sys_created_on",
    "sys_created_by",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
    "sys_tags",
)
"""Fields every table has; the sandbox sets them, a caller cannot."""

JOURNAL_FIELDS = frozenset({"work_notes", "comments"})
"""Journal fields: a write appends an entry to ``sys_journal_field``; a read gives ""."""

_TASK = (
    "number short_description description state active priority impact urgency "
    "assigned_to assignment_group opened_by opened_at closed_at closed_by close_notes "
    "cmdb_ci correlation_id correlation_display category work_notes comments"
)
_CHANGE = (
    "type approval risk requested_by start_date end_date close_code "
    "implementation_plan backout_plan justification"
)
_INCIDENT = "caller_id incident_state severity subcategory close_code resolved_at resolved_by"
_CI = (
    "name ip_address fqdn owned_by managed_by support_group environment used_for "
    "operational_status install_status serial_number short_description correlation_id"
)


@dataclass(frozen=True)
class Table:
    """One table: its own fields, parent, number prefix and the field shown as its name."""

    name: str
    fields: tuple[str, ...]
    parent: str | None = None
    prefix: str | None = None
    first_number: int = 1
    display_field: str = "sys_id"
    references: Mapping[str, str] = field(default_factory=dict)


_USER_REFS = {"assigned_to", "opened_by", "closed_by", "requested_by", "caller_id"}
_REFS: dict[str, str] = {name: "sys_user" for name in _USER_REFS} | {
    "resolved_by": "sys_user",
    "owned_by": "sys_user",
    "managed_by": "sys_user",
    "manager": "sys_user",
    "assignment_group": "sys_user_group",
    "support_group": "sys_user_group",
    "cmdb_ci": "cmdb_ci",
}


def _table(name: str, fields: str, **kwargs: object) -> Table:
    """Return a table whose own fields are the space-separated ``fields``."""
    own = tuple(fields.split())
    refs = {f: _REFS[f] for f in own if f in _REFS}
    return Table(name, own, references=refs, **kwargs)  # type: ignore[arg-type]


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        _table("task", _TASK, display_field="number"),
        _table("change_request", _CHANGE, parent="task", prefix="CHG", first_number=30001),
        _table("incident", _INCIDENT, parent="task", prefix="INC", first_number=10001),
        _table("cmdb_ci", _CI, display_field="name"),
        _table("cmdb_ci_hardware", "", parent="cmdb_ci"),
        _table("cmdb_ci_computer", "os cpu_count ram", parent="cmdb_ci_hardware"),
        _table("cmdb_ci_server", "", parent="cmdb_ci_computer"),
        _table("cmdb_ci_linux_server", "", parent="cmdb_ci_server"),
        _table("cmdb_ci_win_server", "", parent="cmdb_ci_server"),
        _table("cmdb_ci_vm_object", "", parent="cmdb_ci"),
        _table("cmdb_ci_vm_instance", "vm_inst_id state", parent="cmdb_ci_vm_object"),
        _table("cmdb_ci_appl", "version", parent="cmdb_ci"),
        _table("cmdb_ci_database", "type version", parent="cmdb_ci"),
        _table(
            "sys_user",
            "user_name name first_name last_name email title active",
            display_field="name",
        ),
        _table("sys_user_group", "name description manager email active", display_field="name"),
        _table("sys_journal_field", "element element_id name value"),
    )
}
"""Every table the sandbox serves, by name."""

# Choice lists (value -> label) for the display values; per table, "*" for all tables.
CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "change_request": {
        "state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        },
        "type": {"standard": "Standard", "normal": "Normal", "emergency": "Emergency"},
        "approval": {
            "not requested": "Not Yet Requested",
            "requested": "Requested",
            "approved": "Approved",
            "rejected": "Rejected",
        },
        "risk": {"2": "High", "3": "Moderate", "4": "Low"},
    },
    "incident": {
        "state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
    },
    "*": {
        "priority": {
            "1": "1 - Critical",
            "2": "2 - High",
            "3": "3 - Moderate",
            "4": "4 - Low",
            "5": "5 - Planning",
        },
        "impact": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
        "urgency": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    },
}

DEFAULTS: dict[str, dict[str, str]] = {
    "task": {"active": "true", "impact": "3", "urgency": "3", "priority": "4"},
    "change_request": {
        "state": "-5",
        "type": "normal",
        "approval": "not requested",
        "risk": "3",
    },
    "incident": {"state": "1", "incident_state": "1", "priority": "5", "severity": "3"},
    "cmdb_ci": {"operational_status": "1", "install_status": "1"},
    "sys_user": {"active": "true"},
    "sys_user_group": {"active": "true"},
}
"""Values a new record gets when the caller leaves them out (class chain, parent first)."""


def lineage(table: str) -> list[str]:
    """Return the table and its ancestors, the table first; KeyError for an unknown table."""
    chain = [TABLES[table].name]
    while (parent := TABLES[chain[-1]].parent) is not None:
        chain.append(parent)
    return chain


def root(table: str) -> str:
    """Return the table at the top of the hierarchy (where the records are kept)."""
    return lineage(table)[-1]


def extends(table: str, ancestor: str) -> bool:
    """Tell whether ``table`` is ``ancestor`` or one of its subclasses."""
    return ancestor in lineage(table)


def fields_of(table: str) -> tuple[str, ...]:
    """Return every field of a table: system fields, then inherited, then its own."""
    own: list[str] = []
    for name in reversed(lineage(table)):
        own.extend(TABLES[name].fields)
    return SYSTEM_FIELDS + tuple(dict.fromkeys(own))


def reference_target(table: str, field_name: str) -> str | None:
    """Return the table a reference field points to, or None for other fields."""
    for name in lineage(table):
        target = TABLES[name].references.get(field_name)
        if target is not None:
            return target
    return None


def choice_label(table: str, field_name: str, value: str) -> str:
    """Return the label of a choice value (the value itself when it is not a choice)."""
    for name in [*lineage(table), "*"]:
        labels = CHOICES.get(name, {}).get(field_name)
        if labels is not None:
            return labels.get(value, value)
    return value


def defaults_for(table: str) -> dict[str, str]:
    """Return the default values of a new record of ``table``."""
    values: dict[str, str] = {}
    for name in reversed(lineage(table)):
        values.update(DEFAULTS.get(name, {}))
    return values


def number_table(table: str) -> Table | None:
    """Return the class in the lineage that numbers records (its prefix), if any."""
    for name in lineage(table):
        if TABLES[name].prefix:
            return TABLES[name]
    return None


def display_field(table: str) -> str:
    """Return the field whose value names a record of ``table``."""
    for name in lineage(table):
        if TABLES[name].display_field != "sys_id":
            return TABLES[name].display_field
    return "sys_id"
