"""Command routing: typed words → a command and its argument, or the closest suggestion.

Matching reads the one command table in ``cards.commands`` (the same one help lists), so
help and parsing never drift apart. Matching is case-insensitive.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from cards.commands import COMMANDS, Command


@dataclass(frozen=True)
class Parsed:
    """A typed command: what matched, its argument, and what was wrong with it if anything."""

    command: Command | None
    argument: str | None = None
    problem: str | None = None
    suggestion: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    """The named arguments of a command with a ``pattern`` (lower-case)."""


def parse_command(text: str) -> Parsed:
    """Match ``text`` against the command table; longest command name first."""
    words = text.lower().split()
    for command in sorted(COMMANDS, key=lambda c: -len(c.name.split())):
        name = command.name.split()
        if words[: len(name)] != name:
            continue
        rest = words[len(name) :]
        values: dict[str, str] = {}
        if command.sources and "from" in rest:
            at = rest.index("from")
            named = [w for w in rest[at + 1 :] if w not in ("and", ",")]
            if not named or any(w not in command.sources for w in named):
                problem = f"`from` takes {' or '.join(command.sources)} (or both, with `and`)."
                return Parsed(None, problem=problem, suggestion=command.usage)
            rest, values = rest[:at], {"from": " ".join(named)}
        if command.pattern is not None:
            found = re.fullmatch(command.pattern, " ".join(rest))
            if found is None:
                problem = f"Type it as `{command.usage}`."
                return Parsed(None, problem=problem, suggestion=command.usage)
            return Parsed(command, values=found.groupdict())
        if not rest:
            return Parsed(command, values=values)
        if len(rest) == 1 and rest[0] in command.choices:
            return Parsed(command, rest[0], values=values)
        expected = ", ".join(command.choices) if command.choices else "nothing"
        problem = f"`{command.name}` takes {expected} after it, not “{' '.join(rest)}”."
        return Parsed(None, problem=problem, suggestion=command.usage)
    return Parsed(None, suggestion=closest(text))


def closest(text: str) -> str | None:
    """The command name that ``text`` most likely meant, if any is close enough."""
    lowered = " ".join(text.lower().split())
    names = [c.name for c in COMMANDS]
    prefix = " ".join(lowered.split()[:2])
    for candidate in (lowered, prefix, lowered.split()[0] if lowered else ""):
        match = difflib.get_close_matches(candidate, names, n=1, cutoff=0.62)
        if match:
            return match[0]
    return None
