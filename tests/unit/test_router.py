"""Command parsing: the command table, arguments, suggestions."""

from __future__ import annotations

import pytest

from bot.activities import message_text
from bot.router import parse_command


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("help", "help", None),
        ("HELP", "help", None),
        ("subscribe incidents", "subscribe incidents", None),
        ("Subscribe Incidents HIGH", "subscribe incidents", "high"),
        ("subscribe   incidents   low", "subscribe incidents", "low"),
        ("unsubscribe incidents", "unsubscribe incidents", None),
        ("status", "status", None),
    ],
)
def test_parse_known_command_matched(text: str, name: str, argument: str | None) -> None:
    """Known commands match case-insensitively, with their optional argument."""
    parsed = parse_command(text)
    assert parsed.command is not None and parsed.command.name == name
    assert parsed.argument == argument


def test_parse_bad_severity_problem_names_choices() -> None:
    """An unknown severity is a problem that lists the accepted words."""
    parsed = parse_command("subscribe incidents critical")
    assert parsed.command is None
    assert parsed.problem is not None and "informational, low, medium, high" in parsed.problem


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("subscribe incident", "subscribe incidents"),
        ("stauts", "status"),
        ("hlep", "help"),
        ("unsubscribe", "unsubscribe budgets"),
        ("unsubscribe incident", "unsubscribe incidents"),
    ],
)
def test_parse_typo_suggests_closest(text: str, suggestion: str) -> None:
    """A typo gets the closest command as a suggestion."""
    parsed = parse_command(text)
    assert parsed.command is None
    assert parsed.suggestion == suggestion


def test_parse_unrelated_text_no_suggestion() -> None:
    """Text that resembles no command gets no suggestion."""
    assert parse_command("what is the weather").suggestion is None


def test_message_text_mention_and_markup_removed() -> None:
    """The @mention and Teams markup are stripped and white space folded."""
    raw = "<at>Warden</at>&nbsp; subscribe <b>incidents</b>\n high"
    assert message_text(raw) == "subscribe incidents high"


@pytest.mark.parametrize("name", ["subscribe budgets", "unsubscribe budgets"])
def test_parse_budget_command_scope_is_its_value(name: str) -> None:
    """A budget command takes one scope word, lower-cased, as ``values["scope"]``."""
    scope = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/Web"
    parsed = parse_command(f"{name.title()} {scope}")
    assert parsed.command is not None and parsed.command.name == name
    assert parsed.values == {"scope": scope.lower()}


def test_parse_budget_command_without_scope_names_usage() -> None:
    """``subscribe budgets`` alone is refused with the usage that names the scope."""
    parsed = parse_command("subscribe budgets")
    assert parsed.command is None
    assert parsed.problem is not None and "<subscription id" in parsed.problem
