"""Records of the ServiceNow sandbox: insert, update, delete, journal entries, numbering.

Every stored value is a string, as on a real instance (``"sys_mod_count": "3"``, dates
``YYYY-MM-DD HH:MM:SS`` UTC, empty values ""). Records live with the table at the top of
their hierarchy (``task``, ``cmdb_ci``, ...) and carry their class in ``sys_class_name``.

Journal fields (``work_notes``, ``comments``) follow the platform: a write adds a row to
``sys_journal_field`` (``element_id`` = the record, ``element`` = the field, ``name`` = the
table, ``value``) and counts as a change of the record; the record itself keeps "" in the
field, so a plain read answers "" (``sandbox.servicenow_render`` shows the entries with
display values).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping

from sandbox.servicenow_tables import (
    JOURNAL_FIELDS,
    SYSTEM_FIELDS,
    TABLES,
    defaults_for,
    extends,
    fields_of,
    number_table,
    root,
)

Record = dict[str, str]
"""One stored record: field name -> stored value (always a string)."""

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The format of stored date-times (UTC)."""

JOURNAL_TABLE = "sys_journal_field"
"""Where journal entries are kept."""


def new_sys_id() -> str:
    """Return a new 32-character lowercase hexadecimal sys_id."""
    return uuid.uuid4().hex


def stringify(value: object) -> str:
    """Return a JSON value as the instance stores it (``true`` -> "true", null -> "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RecordStore:
    """Every record of the sandbox instance, by top-level table and sys_id."""

    def __init__(self, now: Callable[[], datetime.datetime]) -> None:
        """Start empty; ``now`` gives the instance time (aware UTC)."""
        self._now = now
        self._records: dict[str, dict[str, Record]] = {}
        self._counters: dict[str, int] = {}

    def stamp(self) -> str:
        """Return the current instance time as a stored date-time string."""
        return self._now().astimezone(datetime.timezone.utc).strftime(DATE_FORMAT)

    def clear(self) -> None:
        """Forget every record and restart numbering."""
        self._records.clear()
        self._counters.clear()

    def _bucket(self, table: str) -> dict[str, Record]:
        """Return the records kept with ``table``'s hierarchy."""
        return self._records.setdefault(root(table), {})

    def get(self, table: str, sys_id: str) -> Record | None:
        """Return the stored record (not a copy) if it is of ``table`` or a subclass."""
        found = self._bucket(table).get(sys_id)
        if found is None or not extends(found["sys_class_name"], table):
            return None
        return found

    def all(self, table: str) -> list[Record]:
        """Return every record of ``table`` and its subclasses, oldest first."""
        return [r for r in self._bucket(table).values() if extends(r["sys_class_name"], table)]

    def find(self, table: str, field: str, value: str) -> Record | None:
        """Return the first record of ``table`` whose ``field`` equals ``value``."""
        return next((r for r in self.all(table) if r.get(field) == value), None)

    def _next_number(self, table: str) -> str:
        """Return the next number of a numbered class (CHG0030001, INC0010001, ...)."""
        numbered = number_table(table)
        if numbered is None or numbered.prefix is None:
            return ""
        count = self._counters.get(numbered.name, numbered.first_number)
        self._counters[numbered.name] = count + 1
        return f"{numbered.prefix}{count:07d}"

    def insert(self, table: str, values: Mapping[str, object], user: str) -> Record:
        """Insert a record of class ``values["sys_class_name"]`` or ``table``; return it.

        Unknown fields are ignored (the instance drops them silently); system fields come
        from the sandbox except a supplied ``sys_id``; journal fields become entries.
        ``sys_class_name`` may name a subclass of ``table``; KeyError if it names no table.
        """
        cls = stringify(values.get("sys_class_name")) or table
        if cls not in TABLES or not extends(cls, table):
            cls = table
        stamp = self.stamp()
        record: Record = dict.fromkeys(fields_of(cls), "")
        record.update(defaults_for(cls))
        for name, value in values.items():
            if name in record and name not in SYSTEM_FIELDS and name not in JOURNAL_FIELDS:
                record[name] = stringify(value)
        supplied_id = stringify(values.get("sys_id"))
        record.update(
            sys_id=supplied_id if len(supplied_id) == 32 else new_sys_id(),
            sys_class_name=cls,
            sys_created_on=stamp,
            sys_created_by=user,
            sys_updated_on=stamp,
            sys_updated_by=user,
            sys_mod_count="0",
        )
        if "number" in record and not record["number"]:
            record["number"] = self._next_number(cls)
        if "opened_at" in record and not record["opened_at"]:
            record["opened_at"] = stamp
        self._bucket(cls)[record["sys_id"]] = record
        self._journal(record, values, user)
        return record

    def update(
        self,
        record: Record,
        values: Mapping[str, object],
        user: str,
        *,
        suppress_auto_fields: bool = False,
    ) -> bool:
        """Apply a partial update in place; return whether anything changed.

        Like the platform, an update that changes nothing is not an update: the system
        fields stay and no business rule runs. A journal value always counts as a change.
        """
        changed = False
        for name, value in values.items():
            if name in SYSTEM_FIELDS or name in JOURNAL_FIELDS or name not in record:
                continue
            text = stringify(value)
            if record[name] != text:
                record[name] = text
                changed = True
        changed = self._journal(record, values, user) or changed
        if changed and not suppress_auto_fields:
            record["sys_updated_on"] = self.stamp()
            record["sys_updated_by"] = user
            record["sys_mod_count"] = str(int(record["sys_mod_count"] or "0") + 1)
        return changed

    def delete(self, record: Record) -> None:
        """Remove a record and its journal entries."""
        self._bucket(record["sys_class_name"]).pop(record["sys_id"], None)
        journal = self._bucket(JOURNAL_TABLE)
        for entry_id in [k for k, e in journal.items() if e["element_id"] == record["sys_id"]]:
            del journal[entry_id]

    def _journal(self, record: Record, values: Mapping[str, object], user: str) -> bool:
        """Add a journal entry for each non-empty journal field in ``values``."""
        added = False
        for name in sorted(JOURNAL_FIELDS):
            text = stringify(values.get(name))
            if not text or name not in record:
                continue
            self.insert(
                JOURNAL_TABLE,
                {
                    "element": name,
                    "element_id": record["sys_id"],
                    "name": record["sys_class_name"],
                    "value": text,
                },
                user,
            )
            added = True
        return added

    def journal(self, sys_id: str, field: str | None = None) -> list[Record]:
        """Return a record's journal entries (of one field if given), oldest first."""
        return [
            entry
            for entry in self.all(JOURNAL_TABLE)
            if entry["element_id"] == sys_id and (field is None or entry["element"] == field)
        ]
