"""Small constructors for Adaptive Card 1.5 elements, so the card modules read as layouts.

Every function returns a fresh JSON-ready ``dict``; none of them reads a clock or changes state.
Text handed to them is used as given: callers pass untrusted text through
:func:`cards.text.inert` first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

JSON = dict[str, Any]
"""A JSON object as the card builders produce it."""

SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
"""The ``$schema`` every card names."""

CARD_VERSION = "1.5"
"""The Adaptive Card version every card declares (the newest Teams documents as supported)."""

_SAFE_URL_SCHEMES = frozenset({"https", "http"})


def adaptive_card(body: list[JSON], actions: list[JSON] | None = None) -> JSON:
    """A full-width Teams Adaptive Card 1.5 with ``body`` and, when any, ``actions``."""
    card: JSON = {
        "$schema": SCHEMA_URL,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def text_block(text: str, **style: Any) -> JSON:
    """A wrapping ``TextBlock`` showing ``text`` (markdown and DATE/TIME apply) with ``style``."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def text_run(text: str, **style: Any) -> JSON:
    """A ``TextRun`` of ``text`` with ``style``; markdown never applies inside it."""
    return {"type": "TextRun", "text": text, **style}


def rich_text(*inlines: JSON | str, **options: Any) -> JSON:
    """A ``RichTextBlock`` of ``inlines``; a plain ``str`` becomes an unstyled ``TextRun``."""
    runs = [text_run(item) if isinstance(item, str) else item for item in inlines]
    return {"type": "RichTextBlock", "inlines": runs, **options}


def fact_set(facts: list[tuple[str, str]], **options: Any) -> JSON:
    """A ``FactSet`` with one row per ``(title, value)`` pair, in order."""
    rows = [{"title": title, "value": value} for title, value in facts]
    return {"type": "FactSet", "facts": rows, **options}


def container(items: list[JSON], **options: Any) -> JSON:
    """A ``Container`` holding ``items``."""
    return {"type": "Container", "items": items, **options}


def column(items: list[JSON], width: str = "auto", **options: Any) -> JSON:
    """A ``Column`` of ``width`` (``auto``, ``stretch`` or pixels) holding ``items``."""
    return {"type": "Column", "width": width, "items": items, **options}


def column_set(columns: list[JSON], **options: Any) -> JSON:
    """A ``ColumnSet`` laying ``columns`` side by side."""
    return {"type": "ColumnSet", "columns": columns, **options}


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) address with a host; ``None`` otherwise.

    Keeps ``javascript:``, ``data:`` and relative links out of ``Action.OpenUrl``.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_URL_SCHEMES or not parts.netloc:
        return None
    return url.strip()


def open_url(title: str, url: str) -> JSON:
    """An ``Action.OpenUrl`` button labelled ``title`` that opens ``url``."""
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def execute(title: str, verb: str, data: dict[str, Any]) -> JSON:
    """An ``Action.Execute`` button that sends ``verb`` and ``data`` to the bot."""
    return {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
