"""The JQL the JSM sandbox understands, refusing the rest as Jira does (400 with its words).

Clauses joined by ``AND``: ``field op value`` with ``=``, ``!=``, ``>=``, ``<=``, ``>``,
``<``, ``~`` (contains, case-insensitive) and ``in (a, b)``; then ``ORDER BY field
[ASC|DESC]``. Fields: project, key, issuetype, status, labels, summary, text, updated,
created. Dates are ``"yyyy-MM-dd HH:mm"``, ``"yyyy/MM/dd HH:mm"`` or ``"yyyy-MM-dd"`` in the
account's time zone (UTC here), to the minute as on a real site. The enhanced search
refuses an unbounded query (one without any clause).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.jsm_store import Issue, parse_jira_time

FIELDS = {
    "project",
    "key",
    "issuetype",
    "status",
    "labels",
    "summary",
    "text",
    "updated",
    "created",
}
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|=|>|<|~|\(|\)|,)|(?P<word>[^\s=!<>~(),"]+))'
)
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


class JqlError(Exception):
    """A query Jira would refuse; the message is Jira's."""


@dataclass
class Query:
    """A parsed query: the clauses' predicates and the ordering."""

    predicates: list[Callable[[Issue], bool]] = field(default_factory=list)
    order_field: str | None = None
    descending: bool = False

    def matches(self, issue: Issue) -> bool:
        """True when every clause holds for ``issue``."""
        return all(predicate(issue) for predicate in self.predicates)

    def sort(self, issues: list[Issue]) -> list[Issue]:
        """``issues`` in the query's order (by id when it names none)."""
        if self.order_field is None:
            return sorted(issues, key=lambda i: int(i["id"]))
        name = self.order_field
        return sorted(
            issues, key=lambda i: (_sort_value(i, name), int(i["id"])), reverse=self.descending
        )


def _tokens(text: str) -> list[str]:
    """The query's tokens; ``JqlError`` at the first character that is none."""
    found, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise JqlError(f"Error in the JQL Query: the character at position {position} is bad.")
        found.append(match.group(match.lastgroup or "word"))
        position = match.end()
    return found


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def parse(text: str) -> Query:
    """The query ``text`` says; ``JqlError`` with Jira's message when it is not one."""
    tokens, query = _tokens(text), Query()
    position = 0
    while position < len(tokens):
        word = tokens[position].lower()
        if word == "order":
            _order(tokens[position:], query)
            break
        if word == "and" and query.predicates:
            position += 1
            continue
        position = _clause(tokens, position, query)
    return query


def _clause(tokens: list[str], position: int, query: Query) -> int:
    """Parse one clause at ``position`` into ``query``; the position after it."""
    name = _unquote(tokens[position]).lower()
    if name not in FIELDS:
        raise JqlError(
            f"Field '{tokens[position]}' does not exist or you do not have permission to view it."
        )
    if position + 2 > len(tokens):
        raise JqlError(f"Error in the JQL Query: Expecting operator after '{name}'.")
    operator = tokens[position + 1].lower()
    if operator == "in":
        values, position = _list(tokens, position + 2)
        query.predicates.append(lambda i: any(_equal(i, name, v) for v in values))
        return position
    if operator not in ("=", "!=", ">=", "<=", ">", "<", "~") or position + 2 >= len(tokens):
        raise JqlError(f"Error in the JQL Query: Expecting operator after '{name}'.")
    value = _unquote(tokens[position + 2])
    query.predicates.append(_predicate(name, operator, value))
    return position + 3


def _list(tokens: list[str], position: int) -> tuple[list[str], int]:
    if position >= len(tokens) or tokens[position] != "(":
        raise JqlError("Error in the JQL Query: Expecting '(' after 'in'.")
    values, position = [], position + 1
    while position < len(tokens) and tokens[position] != ")":
        if tokens[position] != ",":
            values.append(_unquote(tokens[position]))
        position += 1
    if position >= len(tokens):
        raise JqlError("Error in the JQL Query: Expecting ')' to close the list.")
    return values, position + 1


def _order(tokens: list[str], query: Query) -> None:
    if len(tokens) < 3 or tokens[1].lower() != "by":
        raise JqlError("Error in the JQL Query: Expecting 'by' after 'order'.")
    name = tokens[2].lower()
    if name not in FIELDS:
        raise JqlError(f"Not able to sort using field '{tokens[2]}'.")
    query.order_field = name
    query.descending = len(tokens) > 3 and tokens[3].lower() == "desc"


def _field(issue: Issue, name: str) -> Any:
    fields = issue["fields"]
    if name == "key":
        return issue["key"]
    if name == "project":
        return fields["project"]["key"]
    if name in ("issuetype", "status"):
        return fields[name]["name"]
    return fields.get(name)


def _equal(issue: Issue, name: str, value: str) -> bool:
    found = _field(issue, name)
    if isinstance(found, list):
        return value in found
    return str(found).lower() == value.lower()


def _date(value: str) -> datetime.datetime:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(value, pattern).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{value}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d'."
    )


def _predicate(name: str, operator: str, value: str) -> Callable[[Issue], bool]:
    """The test of one ``name operator value`` clause."""
    if name in ("updated", "created"):
        bound = _date(value)
        compare = {
            "=": lambda a: a == bound,
            "!=": lambda a: a != bound,
            ">=": lambda a: a >= bound,
            "<=": lambda a: a <= bound,
            ">": lambda a: a > bound,
            "<": lambda a: a < bound,
        }.get(operator)
        if compare is None:
            raise JqlError(f"The operator '{operator}' is not supported by the '{name}' field.")
        return lambda i: compare(
            parse_jira_time(i["fields"][name]).replace(second=0, microsecond=0)
        )
    if operator == "~":
        if name not in ("summary", "text"):
            raise JqlError(f"The operator '~' is not supported by the '{name}' field.")
        needle = value.lower().strip("*")
        return lambda i: (
            needle
            in (
                f"{i['fields']['summary']} {i['fields'].get('description') or ''}".lower()
                if name == "text"
                else str(i["fields"]["summary"]).lower()
            )
        )
    if operator == "=":
        return lambda i: _equal(i, name, value)
    if operator == "!=":
        return lambda i: not _equal(i, name, value)
    raise JqlError(f"The operator '{operator}' is not supported by the '{name}' field.")


def _sort_value(issue: Issue, name: str) -> Any:
    if name in ("updated", "created"):
        return parse_jira_time(issue["fields"][name])
    if name == "key":
        project, _, number = issue["key"].partition("-")
        return (project, int(number))
    return str(_field(issue, name))
