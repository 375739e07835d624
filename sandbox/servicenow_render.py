"""How the ServiceNow sandbox writes a record into an answer (``sysparm_*`` output options).

* ``sysparm_display_value=false`` (default): stored values; reference fields are
  ``{"link": <instance>/api/now/table/<table>/<sys_id>, "value": <sys_id>}`` ("" when empty).
* ``true``: display values (choice labels, the referenced record's name; journal fields
  show their entries, newest first, as the list view prints them); a reference is
  ``{"display_value", "link"}``.
* ``all``: every field is ``{"display_value", "value"}`` (``link`` too for references).
* ``sysparm_exclude_reference_link=true`` turns reference objects into their plain
  value (false) or display value (true), and drops ``link`` (all).
* ``sysparm_fields`` keeps only the named fields, in the table's order; a field may be
  dot-walked once through a reference (``assigned_to.name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.servicenow_store import Record, RecordStore
from sandbox.servicenow_tables import (
    JOURNAL_FIELDS,
    choice_label,
    display_field,
    fields_of,
    reference_target,
)

_JOURNAL_LABELS = {"work_notes": "Work notes", "comments": "Additional comments"}


@dataclass(frozen=True)
class Output:
    """The output options of one request."""

    base_url: str
    display_value: str = "false"
    exclude_reference_link: bool = False
    fields: tuple[str, ...] = ()


class Renderer:
    """Renders records of one store for answers."""

    def __init__(self, store: RecordStore) -> None:
        """Render from ``store`` (references and journal entries are looked up there)."""
        self.store = store

    def display(self, table: str, name: str, record: Record) -> str:
        """Return the display value of one field of a record."""
        value = record.get(name, "")
        if name in JOURNAL_FIELDS:
            return self.journal_text(record["sys_id"], name)
        target = reference_target(table, name)
        if target is not None:
            referenced = self.store.get(target, value) if value else None
            return "" if referenced is None else referenced.get(display_field(target), "")
        return choice_label(table, name, value)

    def journal_text(self, sys_id: str, name: str) -> str:
        """Return a journal field's entries as the platform prints them, newest first."""
        label = _JOURNAL_LABELS.get(name, name)
        return "".join(
            f"{e['sys_created_on']} - {self._user(e['sys_created_by'])} ({label})\n{e['value']}\n\n"
            for e in reversed(self.store.journal(sys_id, name))
        )

    def _user(self, user_name: str) -> str:
        """Return a user's name for a journal header (the user name if unknown)."""
        user = self.store.find("sys_user", "user_name", user_name)
        return user["name"] if user is not None else user_name

    def render(self, table: str, record: Record, output: Output) -> dict[str, Any]:
        """Return a record as the Table API answers it with these output options."""
        names = output.fields or fields_of(table)
        rendered: dict[str, Any] = {}
        for name in names:
            head, _, tail = name.partition(".")
            if head not in record:
                continue
            if tail:
                target = reference_target(table, head)
                sub = self.store.get(target, record[head]) if target and record[head] else None
                if target is not None and tail in fields_of(target):
                    rendered[name] = self._field(target, tail, sub or {}, output)
                continue
            rendered[name] = self._field(table, name, record, output)
        return rendered

    def _field(self, table: str, name: str, record: Record, output: Output) -> Any:
        """Return one field's value as the output options ask."""
        value = record.get(name, "")
        target = reference_target(table, name)
        mode = output.display_value
        if target is None:
            if mode == "false":
                return value
            shown = self.display(table, name, record) if record else ""
            return shown if mode == "true" else {"display_value": shown, "value": value}
        if not value:
            return "" if mode != "all" else {"display_value": "", "value": ""}
        link = f"{output.base_url}/api/now/table/{target}/{value}"
        shown = self.display(table, name, record)
        if mode == "false":
            return value if output.exclude_reference_link else {"link": link, "value": value}
        if mode == "true":
            return (
                shown if output.exclude_reference_link else {"display_value": shown, "link": link}
            )
        both = {"display_value": shown, "value": value}
        return both if output.exclude_reference_link else {**both, "link": link}
