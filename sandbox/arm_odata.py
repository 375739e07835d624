"""The small OData subset Sentinel list operations accept: ``$filter``, ``$orderby``, paging.

``$filter``: comparisons joined by ``and`` and ``or`` (``and`` binds tighter, as in OData;
parentheses group), each ``properties/<field> <op> <literal>`` with ``op`` one of
``eq ne gt ge lt le`` and the literal a quoted string (``'Closed'``), an unquoted ISO 8601
timestamp (``2026-01-01T00:00:00Z``), a number, ``true``/``false`` or ``null``. Fields
ending in ``TimeUtc`` compare as instants. ``$orderby``:
``properties/<field> [asc|desc]`` (one key; the resource name breaks ties).

Paging: the first page snapshots the ordered ids; ``$skipToken`` is an opaque cursor into
that snapshot, so walking the pages returns every matching resource once, with its
current body, even while the store changes.
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_FIELD = re.compile(r"^properties/(?P<field>[A-Za-z][A-Za-z0-9]*)$", re.IGNORECASE)
_OPERATOR = re.compile(r"^(eq|ne|gt|ge|lt|le)$", re.IGNORECASE)
_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<quoted>'(?:[^']|'')*')|(?P<word>[^\s()']+))")
_ORDER = re.compile(
    r"^\s*properties/(?P<field>[A-Za-z][A-Za-z0-9]*)(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE
)
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
}


class ODataError(ValueError):
    """A ``$filter``/``$orderby``/``$skipToken`` the sandbox cannot honour (answered as 400)."""


def parse_instant(value: str) -> datetime.datetime:
    """Parse an ISO 8601 UTC timestamp with any number of fraction digits (7 as ARM sends)."""
    if not _INSTANT.match(value):
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    head, _, rest = value.partition(".")
    if rest:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        fraction = digits.group(0)
        value = f"{head}.{fraction[:6].ljust(6, '0')}{rest[len(fraction) :]}"
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Comparison:
    """One ``properties/<field> <op> <literal>`` clause."""

    field: str
    op: str
    literal: Any

    def matches(self, properties: dict[str, Any]) -> bool:
        """Tell whether a resource's ``properties`` satisfy the clause (missing never does)."""
        value = _comparable(self.field, properties.get(self.field))
        if value is None or self.literal is None:
            equal = value == self.literal
            return equal if self.op == "eq" else (not equal if self.op == "ne" else False)
        try:
            return _OPS[self.op](value, self.literal)
        except TypeError:
            return False


def _comparable(field: str, value: Any) -> Any:
    """Return a property value as it compares: instants for ``*TimeUtc`` fields."""
    if isinstance(value, str) and field.endswith("TimeUtc"):
        try:
            return parse_instant(value)
        except ValueError:
            return None
    return value


def _literal(field: str, text: str) -> Any:
    """Parse a filter literal for ``field``."""
    if text.startswith("'"):
        value: Any = text[1:-1].replace("''", "'")
        return _comparable(field, value) if field.endswith("TimeUtc") else value
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _INSTANT.match(text):
        return parse_instant(text)
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise ODataError(f"Invalid $filter literal '{text}'.") from None


@dataclass(frozen=True)
class AnyOf:
    """Clauses joined by ``or``: one of them must hold."""

    clauses: tuple[Clause, ...]

    def matches(self, properties: dict[str, Any]) -> bool:
        """Tell whether any clause holds for a resource's ``properties``."""
        return any(clause.matches(properties) for clause in self.clauses)


@dataclass(frozen=True)
class AllOf:
    """Clauses joined by ``and`` (inside parentheses or an ``or``): all must hold."""

    clauses: tuple[Clause, ...]

    def matches(self, properties: dict[str, Any]) -> bool:
        """Tell whether every clause holds for a resource's ``properties``."""
        return all(clause.matches(properties) for clause in self.clauses)


Clause = Comparison | AnyOf | AllOf
"""One condition of a ``$filter``."""


def _tokens(text: str) -> list[str]:
    """Split a filter into parentheses, quoted literals and words; ODataError if it cannot."""
    tokens, position, end = [], 0, len(text.rstrip())
    while position < end:
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise ODataError(f"Invalid $filter near '{text[position:].strip()}'.")
        tokens.append(found.group(found.lastgroup or 0))
        position = found.end()
    return tokens


class _FilterParser:
    """Recursive descent over ``or`` (loosest), ``and``, then parentheses and comparisons."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._at = 0

    def parse(self) -> Clause:
        clause = self._either()
        if self._at < len(self._tokens):
            raise ODataError(f"Invalid $filter near '{' '.join(self._tokens[self._at :])}'.")
        return clause

    def _keyword(self, word: str) -> bool:
        """Consume the next token if it is ``word`` (any case)."""
        if self._at < len(self._tokens) and self._tokens[self._at].lower() == word:
            self._at += 1
            return True
        return False

    def _either(self) -> Clause:
        clauses = [self._both()]
        while self._keyword("or"):
            clauses.append(self._both())
        return clauses[0] if len(clauses) == 1 else AnyOf(tuple(clauses))

    def _both(self) -> Clause:
        clauses = [self._single()]
        while self._keyword("and"):
            clauses.append(self._single())
        return clauses[0] if len(clauses) == 1 else AllOf(tuple(clauses))

    def _single(self) -> Clause:
        if self._keyword("("):
            clause = self._either()
            if not self._keyword(")"):
                raise ODataError("Invalid $filter: a parenthesis is not closed.")
            return clause
        words = self._tokens[self._at : self._at + 3]
        self._at += 3
        found = _FIELD.match(words[0]) if len(words) == 3 else None
        if found is None or not _OPERATOR.match(words[1]) or words[2] in ("(", ")"):
            raise ODataError(f"Invalid $filter clause '{' '.join(words)}'.")
        field = found["field"]
        return Comparison(field, words[1].lower(), _literal(field, words[2]))


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a ``$filter`` into clauses that must all hold; ODataError outside the subset."""
    if text is None or not text.strip():
        return []
    clause = _FilterParser(text.strip()).parse()
    return list(clause.clauses) if isinstance(clause, AllOf) else [clause]


@dataclass(frozen=True)
class OrderBy:
    """An ``$orderby`` key: a property of ``properties`` and a direction."""

    field: str = "createdTimeUtc"
    descending: bool = True

    def sort(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the resources ordered by the key (missing values last), then by name."""
        by_name = sorted(resources, key=lambda item: str(item.get("name", "")).lower())
        present = [r for r in by_name if _sort_value(self.field, r) is not None]
        missing = [r for r in by_name if _sort_value(self.field, r) is None]
        present.sort(key=lambda item: _sort_value(self.field, item), reverse=self.descending)
        return present + missing


def _sort_value(field: str, resource: dict[str, Any]) -> Any:
    """Return the sort value of a resource for ``field``."""
    return _comparable(field, resource.get("properties", {}).get(field))


def parse_orderby(text: str | None, default: OrderBy) -> OrderBy:
    """Parse ``$orderby``; raises ODataError for several keys or an unknown form."""
    if text is None or not text.strip():
        return default
    found = _ORDER.match(text)
    if found is None:
        raise ODataError(f"Invalid $orderby '{text}'.")
    return OrderBy(found["field"], (found["dir"] or "asc").lower() == "desc")


def parse_top(text: str | None, default: int, maximum: int | None) -> int:
    """Parse ``$top`` (the page size); raises ODataError outside 1..maximum."""
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ODataError(f"The value '{text}' is not valid for $top.") from None
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" and {maximum}" if maximum is not None else ""
        raise ODataError(f"$top must be between 1{limit}.")
    return value


@dataclass
class _Cursor:
    """A paging snapshot: the ordered ids, where this page starts, and the next token."""

    ids: list[str]
    offset: int
    size: int
    next_token: str | None = None


class Cursors:
    """Server-side paging snapshots addressed by opaque ``$skipToken`` values (bounded).

    A token stays valid after use, so a client may retry a page (after a 429 or a reset).
    """

    def __init__(self, limit: int = 1000) -> None:
        """Keep at most ``limit`` open snapshots; the least recently used are forgotten."""
        self._limit = limit
        self._open: OrderedDict[str, _Cursor] = OrderedDict()

    def page(self, ids: list[str], size: int) -> tuple[list[str], str | None]:
        """Start paging over ``ids``: return the first page and the next token (or None)."""
        return self._emit(_Cursor(ids, 0, size))

    def resume(self, token: str) -> tuple[list[str], str | None]:
        """Return the page a token points to and the following token; ODataError if unknown."""
        cursor = self._open.get(token)
        if cursor is None:
            raise ODataError("The $skipToken is invalid or has expired.")
        self._open.move_to_end(token)
        return self._emit(cursor)

    def _emit(self, cursor: _Cursor) -> tuple[list[str], str | None]:
        """Cut one page from a cursor and register the rest under its next token."""
        end = cursor.offset + cursor.size
        page = cursor.ids[cursor.offset : end]
        if end >= len(cursor.ids):
            return page, None
        if cursor.next_token is None:
            cursor.next_token = secrets.token_urlsafe(24)
            self._open[cursor.next_token] = _Cursor(cursor.ids, end, cursor.size)
            while len(self._open) > self._limit:
                self._open.popitem(last=False)
        return page, cursor.next_token

    def clear(self) -> None:
        """Forget every snapshot."""
        self._open.clear()
