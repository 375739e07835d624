"""Text helpers for cards: make untrusted text inert, shorten it, and format times.

How untrusted text is neutralised
---------------------------------
Text that Warden did not write (incident titles, descriptions, owner names, labels, tactics,
products, a command the user typed, ...) passes through :func:`inert` before it enters a card.
Every Adaptive Card renderer runs the ``{{DATE(...)}}``/``{{TIME(...)}}`` functions not only in
``TextBlock`` but also in ``TextRun`` and in ``Fact`` titles and values (the JavaScript renderer
draws facts as TextBlocks; the shared C++ model date-parses ``Fact`` and ``TextRun`` text), so the
placement of a string does not make it safe. :func:`inert` therefore:

1. removes control characters and Unicode bidirectional overrides (which can disguise text,
   e.g. make ``exe.txt`` read as ``txt.exe``) and folds every run of whitespace, newlines
   included, into one space, so a value cannot start a markdown list or paragraph;
2. puts a ZERO WIDTH SPACE (U+200B) between two consecutive ``{`` so no ``{{`` survives and no
   function can be formed; the text looks the same;
3. puts a ZERO WIDTH SPACE between ``]`` and ``(`` so markdown ``[label](url)`` cannot become a
   disguised link where a renderer applies markdown (``TextBlock`` and ``Fact`` values).

Free text (titles, descriptions, the unknown command) is additionally drawn as ``TextRun``s of a
``RichTextBlock``, where markdown is not applied at all. Emphasis markers (``*``, ``_``) left in
short ``Fact`` values can at worst make a word bold or italic; that is accepted. Nothing is
backslash-escaped, because renderers disagree on markdown escapes and would show stray
backslashes. ``${...}`` needs no treatment: card templates are expanded by a sender's templating
SDK, which Warden does not use, and never by Teams.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

ZWSP = "\u200b"
"""The invisible character :func:`inert` inserts to break ``{{`` and ``](``."""

ELLIPSIS = "\u2026"
"""The character :func:`shorten` appends to text it cut."""

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_WHITESPACE = re.compile(r"\s+")
_DOUBLE_BRACE = re.compile(r"\{(?=\{)")
_LINK_JOIN = re.compile(r"\](?=\()")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")


def inert(text: str) -> str:
    """``text`` on one line, with no ``{{``, no ``](``, no control or bidi-override characters.

    The result reads the same to a person; see the module docstring for why each step is needed.
    """
    kept = "".join(_visible(ch) for ch in text)
    kept = _WHITESPACE.sub(" ", kept).strip()
    kept = _DOUBLE_BRACE.sub("{" + ZWSP, kept)
    return _LINK_JOIN.sub("]" + ZWSP, kept)


def _visible(ch: str) -> str:
    """``ch`` itself, a space for a control character, or nothing for a bidi control."""
    if ch in _BIDI_CONTROLS:
        return ""
    if unicodedata.category(ch) == "Cc":
        return " "
    return ch


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary when one is near.

    Text that fits is returned unchanged; cut text ends with an ellipsis (counted in ``limit``).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= limit * 3 // 4:
        head = head[:space]
    return head.rstrip(" .,;:-") + ELLIPSIS


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC to the second (``2019-01-01T13:15:30Z``); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def localized(moment: datetime) -> str:
    """Card functions that show ``moment`` as a short date and time in the reader's time zone.

    Only for ``TextBlock`` text: ``{{DATE(…, SHORT)}} {{TIME(…)}}``.
    """
    stamp = rfc3339(moment)
    return f"{{{{DATE({stamp}, SHORT)}}}} {{{{TIME({stamp})}}}}"


def humanize_identifier(name: str) -> str:
    """A CamelCase identifier such as Sentinel's ``CommandAndControl`` as words.

    ``CommandAndControl`` becomes ``Command and Control``; other text is returned unchanged.
    """
    words = _CAMEL_BOUNDARY.sub(" ", name)
    return words.replace(" And ", " and ").replace(" Of ", " of ")
