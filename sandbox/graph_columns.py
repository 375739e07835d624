"""Column definitions of the Graph sandbox's lists, and Graph's common 400/404 answers.

A column has one type facet (``text``, ``number``, ``boolean``, ``dateTime``, ``choice``,
``hyperlinkOrPicture``) as in ``microsoft.graph.columnDefinition``; values written to a
list item are checked against it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.arm_records import GraphError

COLUMN_TYPES = ("text", "number", "boolean", "dateTime", "choice", "hyperlinkOrPicture")
"""Column type facets the sandbox understands (one per columnDefinition)."""


def not_found(what: str) -> GraphError:
    """Return Graph's 404 ``itemNotFound``."""
    return GraphError(404, "itemNotFound", f"The requested {what} was not found.")


def invalid(message: str) -> GraphError:
    """Return Graph's 400 ``invalidRequest``."""
    return GraphError(400, "invalidRequest", message)


@dataclass
class Column:
    """A columnDefinition: internal ``name``, display name, type facet and flags."""

    name: str
    kind: str = "text"
    display_name: str = ""
    required: bool = False
    indexed: bool = False
    read_only: bool = False
    choices: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def from_graph(cls, body: object) -> Column:
        """Parse a columnDefinition request body, or raise Graph's 400."""
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise invalid("A column definition needs a non-empty 'name'.")
        kinds = [kind for kind in COLUMN_TYPES if kind in body]
        if len(kinds) > 1:
            raise invalid("A column definition may have only one type facet.")
        kind = kinds[0] if kinds else "text"
        facet = body.get(kind) or {}
        choices = facet.get("choices", []) if isinstance(facet, dict) else []
        return cls(
            name=body["name"],
            kind=kind,
            display_name=str(body.get("displayName") or body["name"]),
            required=bool(body.get("required", False)),
            indexed=bool(body.get("indexed", False)),
            choices=[str(choice) for choice in choices],
        )

    def render(self) -> dict[str, Any]:
        """Return the columnDefinition JSON."""
        facet: dict[str, Any] = {"choices": self.choices} if self.kind == "choice" else {}
        return {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name or self.name,
            "description": "",
            "columnGroup": "Custom Columns",
            "enforceUniqueValues": False,
            "hidden": False,
            "indexed": self.indexed,
            "readOnly": self.read_only,
            "required": self.required,
            self.kind: facet,
        }

    def check(self, value: object) -> None:
        """Raise Graph's 400 if ``value`` does not fit this column (None clears it)."""
        if value is None:
            return
        fits = {
            "text": isinstance(value, str),
            "dateTime": isinstance(value, str),
            "hyperlinkOrPicture": isinstance(value, (str, dict)),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "choice": isinstance(value, str) and (not self.choices or value in self.choices),
        }[self.kind]
        if not fits:
            raise invalid(f"Invalid value for field '{self.name}' of type '{self.kind}'.")


def builtin_columns() -> list[Column]:
    """Return the columns every list starts with (Title and Graph's read-only ones)."""
    return [
        Column("Title", "text", "Title", required=False, indexed=False),
        Column("Created", "dateTime", "Created", read_only=True),
        Column("Modified", "dateTime", "Modified", read_only=True),
    ]
