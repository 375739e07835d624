"""Alert cards for the auditors' channel: evidence records changed outside Warden.

``outside_change_card`` shows one change: what changed, who changed it, what differs from
Warden's record and the hash that no longer matches. ``outside_changes_summary_card`` shows
the changes a resync found (a lost delta token) as one card, so the channel is not flooded.
Every value comes from SharePoint (names, people, column values) and passes through
:func:`cards.text.inert`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cards.elements import JSON, adaptive_card, fact_set, open_url, safe_url, text_block
from cards.text import inert, shorten
from core.outside_changes import UNKNOWN, ChangeKind, OutsideChange

DETAIL_LIMIT = 600
"""Characters of the "what differs" text a card shows."""

SUMMARY_LIMIT = 20
"""Changes a summary card lists one by one (the rest are counted)."""

_COLORS = {
    ChangeKind.REPLACED: "attention",
    ChangeKind.DELETED: "attention",
    ChangeKind.EDITED: "warning",
    ChangeKind.ADDED: "warning",
}


def outside_change_card(change: OutsideChange) -> JSON:
    """One change made outside Warden, with its hashes and a link to the item."""
    body = [
        text_block("Evidence record changed outside Warden", weight="bolder", color="attention"),
        text_block(
            f"The {inert(change.record.value)} **{inert(change.name)}** was "
            f"{change.change.value} by {inert(change.who)}.",
            color=_COLORS[change.change],
        ),
        fact_set(_facts(change)),
    ]
    if change.detail:
        body.append(text_block(shorten(inert(change.detail), DETAIL_LIMIT), isSubtle=True))
    url = safe_url(change.web_url)
    return adaptive_card(body, [open_url("Open in SharePoint", url)] if url else None)


def outside_changes_summary_card(changes: Sequence[OutsideChange]) -> JSON:
    """The changes a resync found, as one card (the first ``SUMMARY_LIMIT`` by name)."""
    count = len(changes)
    body = [
        text_block(
            f"{count} evidence record{'s' if count != 1 else ''} changed outside Warden",
            weight="bolder",
            color="attention",
        ),
        text_block(
            "Warden lost track of SharePoint's changes for a while (its delta token expired) "
            "and compared every record with its own. Each change is in the audit log.",
            isSubtle=True,
        ),
        fact_set(
            [
                (inert(f"{c.record.value} {c.name}"), inert(f"{c.change.value} by {c.who}"))
                for c in changes[:SUMMARY_LIMIT]
            ]
        ),
    ]
    if count > SUMMARY_LIMIT:
        body.append(text_block(f"…and {count - SUMMARY_LIMIT} more.", isSubtle=True))
    return adaptive_card(body)


def _facts(change: OutsideChange) -> list[tuple[str, str]]:
    """The card's facts: request, requirement, item, both hashes when known."""
    facts = [("Changed by", inert(change.who)), ("Item", inert(change.item_id))]
    if change.request_id != UNKNOWN:
        facts.append(("Request", inert(change.request_id)))
    if change.requirement_id != UNKNOWN:
        facts.append(("Requirement", inert(change.requirement_id)))
    if change.expected_hash:
        facts.append(("Hash Warden recorded", change.expected_hash))
    if change.found_hash:
        facts.append(("Hash found now", change.found_hash))
    return facts
