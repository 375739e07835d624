"""Encoded queries (``sysparm_query``) as a ServiceNow instance reads them.

Grammar: ``^NQ`` separates queries whose results are united; inside one, ``^`` joins
conditions with AND and ``^OR`` adds an alternative to the condition before it.
``ORDERBY<field>`` / ``ORDERBYDESC<field>`` sort (first one wins, later ones break ties);
``EQ`` ends the query. A condition is ``<field><operator><value>`` with the operators
``=``, ``!=``, ``LIKE``, ``NOT LIKE``, ``STARTSWITH``, ``ENDSWITH``, ``IN``, ``NOT IN``,
``ISEMPTY``, ``ISNOTEMPTY``, ``>``, ``>=``, ``<``, ``<=``. A field may be dot-walked once
through a reference (``assigned_to.name=Beth Anglin``).

Comparisons ignore case, as they do on an instance's database. ``>``/``<`` compare numbers
when both sides are integers and strings otherwise, which orders ``YYYY-MM-DD HH:MM:SS``
dates correctly; an empty value never satisfies them.

The trap of the real platform is reproduced: a condition naming a field the table does
not have, or one that cannot be parsed, is dropped without a word, so the query may
match every record. With the instance property ``glide.invalid_query.returns_no_rows``
(``invalid_query_returns_no_rows``) such a query matches nothing instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.servicenow_store import Record
from sandbox.servicenow_tables import fields_of, reference_target

_CONDITION = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)"
    r"(?P<op>ISNOTEMPTY|ISEMPTY|NOT LIKE|STARTSWITH|ENDSWITH|NOT IN|LIKE|IN|!=|>=|<=|=|>|<)"
    r"(?P<value>.*)$",
    re.DOTALL,
)

Lookup = Callable[[str, str], Record | None]
"""Finds a referenced record: (table, sys_id) -> record or None."""


@dataclass(frozen=True)
class Condition:
    """One condition: a (possibly dot-walked) field, an operator and its operand."""

    field: str
    op: str
    value: str


@dataclass
class EncodedQuery:
    """A parsed ``sysparm_query``: OR-of-(AND-of-(OR-of-conditions)), ordering, problems."""

    queries: list[list[list[Condition]]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def _valid_field(table: str, name: str) -> bool:
    """Tell whether ``name`` (optionally one dot-walk deep) exists on ``table``."""
    head, _, tail = name.partition(".")
    if head not in fields_of(table):
        return False
    if not tail:
        return True
    target = reference_target(table, head)
    return target is not None and tail in fields_of(target)


def _parse_term(table: str, term: str) -> Condition | None:
    """Return the condition a term encodes, or None if it is malformed or names no field."""
    found = _CONDITION.match(term)
    if found is None or not _valid_field(table, found["field"]):
        return None
    op, value = found["op"], found["value"]
    if op in ("ISEMPTY", "ISNOTEMPTY") and value:
        return None
    return Condition(found["field"], op, value)


def parse_query(table: str, text: str) -> EncodedQuery:
    """Parse an encoded query against ``table``'s fields (never raises)."""
    parsed = EncodedQuery()
    for part in text.split("^NQ") if text else []:
        clauses: list[list[Condition]] = []
        for term in part.split("^"):
            _parse_into(table, term, clauses, parsed)
        parsed.queries.append(clauses)
    return parsed


def _parse_into(
    table: str, term: str, clauses: list[list[Condition]], parsed: EncodedQuery
) -> None:
    """Add one ``^``-separated term to the clauses (or to the ordering, or to the invalid)."""
    if term in ("", "EQ"):
        return
    if term.startswith("ORDERBY"):
        desc = term.startswith("ORDERBYDESC")
        name = term.removeprefix("ORDERBYDESC" if desc else "ORDERBY")
        if name in fields_of(table):
            parsed.order.append((name, desc))
        else:
            parsed.invalid.append(term)
        return
    alternative = term.startswith("OR") and bool(clauses)
    condition = _parse_term(table, term[2:] if alternative else term)
    if condition is None:
        parsed.invalid.append(term)
    elif alternative:
        clauses[-1].append(condition)
    else:
        clauses.append([condition])


def _value(record: Record, name: str, table: str, lookup: Lookup) -> str:
    """Return a field's stored value, following one dot-walk through a reference."""
    head, _, tail = name.partition(".")
    value = record.get(head, "")
    if not tail:
        return value
    target = reference_target(table, head)
    referenced = lookup(target, value) if target and value else None
    return "" if referenced is None else referenced.get(tail, "")


def _compare(left: str, right: str) -> int:
    """Return -1, 0 or 1: numerically when both are integers, else as strings."""
    try:
        a, b = int(left), int(right)
    except ValueError:
        a_text, b_text = left.lower(), right.lower()
        return (a_text > b_text) - (a_text < b_text)
    return (a > b) - (a < b)


def matches(condition: Condition, value: str) -> bool:
    """Tell whether a stored value satisfies one condition."""
    op, operand = condition.op, condition.value
    low, target = value.lower(), operand.lower()
    checks: dict[str, Callable[[], bool]] = {
        "=": lambda: low == target,
        "!=": lambda: low != target,
        "LIKE": lambda: target in low,
        "NOT LIKE": lambda: target not in low,
        "STARTSWITH": lambda: low.startswith(target),
        "ENDSWITH": lambda: low.endswith(target),
        "IN": lambda: low in {v.strip() for v in target.split(",")},
        "NOT IN": lambda: low not in {v.strip() for v in target.split(",")},
        "ISEMPTY": lambda: value == "",
        "ISNOTEMPTY": lambda: value != "",
        ">": lambda: value != "" and _compare(value, operand) > 0,
        ">=": lambda: value != "" and _compare(value, operand) >= 0,
        "<": lambda: value != "" and _compare(value, operand) < 0,
        "<=": lambda: value != "" and _compare(value, operand) <= 0,
    }
    return checks[op]()


def _sort_key(value: str) -> tuple[int, int, str]:
    """Sort integers numerically before other strings (compared without case)."""
    try:
        return (0, int(value), "")
    except ValueError:
        return (1, 0, value.lower())


def run_query(
    records: list[Record],
    table: str,
    text: str,
    lookup: Lookup,
    *,
    invalid_returns_no_rows: bool = False,
) -> list[Record]:
    """Return the records an encoded query selects, in its order (input order otherwise)."""
    parsed = parse_query(table, text)
    if parsed.invalid and invalid_returns_no_rows:
        return []

    def selected(record: Record) -> bool:
        """Tell whether any of the ``^NQ`` queries selects the record."""
        return not parsed.queries or any(
            all(
                any(matches(c, _value(record, c.field, table, lookup)) for c in clause)
                for clause in query
            )
            for query in parsed.queries
        )

    chosen = [record for record in records if selected(record)]
    for name, desc in reversed(parsed.order):
        chosen.sort(key=lambda r, n=name: _sort_key(r.get(n, "")), reverse=desc)  # type: ignore[misc]
    return chosen
