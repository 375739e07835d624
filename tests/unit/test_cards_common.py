"""Specification of the conversational cards, the command table, card verbs and purity.

The golden files and schema validation of every variant live in ``test_cards.py``; this module
asserts behaviour with the same helpers.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import Any

import pytest

from cards import (
    COMMANDS,
    CardVerb,
    command_named,
    error_card,
    help_card,
    status_card,
    welcome_card,
)
from cards.commands import SEVERITY_CHOICES
from cards.text import ELLIPSIS, inert, shorten
from core.models import ConversationKind, Severity
from tests.unit.test_cards import ROOT, Card, status, strings, walk


def test_help_card_plain_lists_every_command_usage() -> None:
    """Help lists every command's usage and summary from the command table, nothing unknown."""
    shown = strings(help_card())
    for command in COMMANDS:
        assert command.usage in shown and f" \u2014 {command.summary}" in shown
    assert not [s for s in shown if "know" in s or "Did you mean" in s]


def test_help_card_unknown_and_suggestion_lead_the_card() -> None:
    """With unknown and suggestion, help starts with the quoted unknown text and the suggestion."""
    body = help_card(unknown="subscrbe", suggestion="subscribe incidents")["body"]
    assert [run["text"] for run in body[0]["inlines"]] == [
        "I don't know \u201c",
        "subscrbe",
        "\u201d.",
    ]
    assert [run["text"] for run in body[1]["inlines"]] == [
        "Did you mean ",
        "subscribe incidents",
        "?",
    ]


def test_help_card_unknown_text_is_inert() -> None:
    """Typed text with braces or links is neutralised before it is echoed."""
    card = help_card(unknown="{{DATE(2019-01-01T00:00:00Z)}} [x](https://evil.example)")
    assert not [s for s in strings(card) if "{{" in s or "](" in s]


def test_commands_subscribe_choices_match_severity_parse() -> None:
    """Every severity word in the subscribe usage parses, and every severity has a word."""
    subscribe = command_named("subscribe incidents")
    assert subscribe.choices == SEVERITY_CHOICES
    assert {Severity.parse(word) for word in subscribe.choices} == set(Severity)
    assert subscribe.usage == "subscribe incidents [informational|low|medium|high] [from defender]"


def test_commands_table_names_are_unique_lowercase_and_start_usage() -> None:
    """Command names are unique, lower-case, single-spaced and begin their usage."""
    names = [command.name for command in COMMANDS]
    assert names == [
        "help",
        "subscribe incidents",
        "unsubscribe incidents",
        "subscribe budgets",
        "unsubscribe budgets",
        "status",
        "link",
        "link deployment",
        "unlink",
        "request evidence",
        "whoami",
    ]
    for command in COMMANDS:
        assert command.name == " ".join(command.name.lower().split())
        assert command.usage.startswith(command.name)


def test_command_named_unknown_name_raises_key_error() -> None:
    """Looking up a command that does not exist raises KeyError."""
    with pytest.raises(KeyError):
        command_named("destroy")


@pytest.mark.parametrize(
    ("kind", "first"),
    [
        (ConversationKind.CHANNEL, "@Warden subscribe incidents"),
        (ConversationKind.GROUP_CHAT, "@Warden subscribe incidents"),
        (ConversationKind.PERSONAL, "subscribe incidents"),
    ],
)
def test_welcome_card_any_kind_names_first_command(kind: ConversationKind, first: str) -> None:
    """The welcome tells a channel or group chat to @mention and a personal chat not to."""
    assert first in strings(welcome_card("Warden", kind))


def test_status_card_dead_jobs_are_highlighted() -> None:
    """Dead jobs add an attention container; a healthy status has none."""

    def attention(card: Card) -> list[Any]:
        return [n for n in walk(card) if isinstance(n, dict) and n.get("style") == "attention"]

    assert attention(status_card(status(outbox_dead=2)))
    assert not attention(status_card(status()))


def test_status_card_without_subscription_or_delivery_says_so() -> None:
    """No subscription reads "Not subscribed"; no delivery reads "never"."""
    shown = strings(status_card(status(subscription=None, last_delivery=None)))
    assert "Not subscribed" in shown and "Last delivery: never" in shown


def test_error_card_reference_shown_only_with_correlation_id() -> None:
    """The "Reference:" line appears only when a correlation id is given."""
    assert "Reference: " in strings(error_card("t", "m", correlation_id="abc"))
    assert "Reference: " not in strings(error_card("t", "m"))


def test_card_verb_unknown_verb_parses_to_none() -> None:
    """Known verbs parse to members; unknown or missing verbs parse to None."""
    assert CardVerb.parse("incident.refresh") is CardVerb.REFRESH
    assert CardVerb.parse("incident.explode") is None and CardVerb.parse(None) is None


def test_cards_package_imports_only_core_and_stdlib() -> None:
    """cards/ imports nothing but core, itself and the standard library, and reads no clock."""
    allowed = set(sys.stdlib_module_names) | {"core", "cards", "__future__"}
    for path in sorted((ROOT / "cards").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, (path.name, roots)
        assert not re.search(r"\.(now|utcnow|today)\(|time\.time\(|\bprint\(|\bopen\(", source), (
            path.name
        )


def test_shorten_text_within_limit_is_unchanged() -> None:
    """Text that fits is returned as it is."""
    assert shorten("short", 5) == "short"


def test_shorten_text_without_spaces_is_cut_at_limit() -> None:
    """Text with no word boundary near the limit is cut hard, ellipsis included in the limit."""
    assert shorten("x" * 20, 10) == "x" * 9 + ELLIPSIS


def test_inert_applied_twice_changes_nothing_more() -> None:
    """Neutralising is idempotent, so text already made inert is safe to pass again."""
    once = inert("a {{{b}}} [c](d)\n\te\u202e")
    assert inert(once) == once
    assert "{{" not in once and "](" not in once and "\n" not in once
