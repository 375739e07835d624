"""Teams activities acted on once: a repeated delivery is answered without acting again.

Teams (or a replay of recorded traffic) may deliver the same activity twice; its
conversation and activity id name it (``core.store.receipts``). Messages, membership changes
and card clicks are deduplicated; reads (search, link previews, task modules) are answered
again, as they change nothing. A repeated click is answered with a short message instead of
the card, since the click's work was done by its first delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from core.store import receipts
from core.store.group_commit import GroupCommit
from core.store.store import Store

ACTED_ON = frozenset({"message", "conversationUpdate", "installationUpdate"})
"""Activity types whose repeats are not acted on again."""

ACTED_ON_INVOKES = frozenset({"adaptiveCard/action"})
"""Invoke names whose repeats are not acted on again."""

ALREADY_DONE = "This was already done."


class ActivityReceipts:
    """Receipts of the activities Warden has acted on, in its store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._batches: GroupCommit[tuple[str, str], bool] = GroupCommit(self._record)

    async def _record(self, deliveries: Sequence[tuple[str, str]]) -> list[bool]:
        return await receipts.first_deliveries(self._store, deliveries)

    @staticmethod
    def key(activity: dict[str, Any]) -> str | None:
        """The receipt key of an activity that is acted on once; None for the others."""
        kind = activity.get("type")
        if kind == "invoke":
            if activity.get("name") not in ACTED_ON_INVOKES:
                return None
        elif kind not in ACTED_ON:
            return None
        activity_id = activity.get("id")
        conversation = (activity.get("conversation") or {}).get("id")
        if not isinstance(activity_id, str) or not activity_id or not isinstance(conversation, str):
            return None
        return receipts.activity_key(conversation, activity_id)

    async def first(self, key: str, activity: dict[str, Any]) -> bool:
        """Record the activity's receipt; False when it was delivered (and acted on) before.

        Receipts of activities arriving together are committed together (group commit)."""
        return await self._batches.submit((key, str(activity.get("type"))))

    async def forget(self, key: str) -> None:
        """Drop a receipt: acting on the activity failed, so its redelivery must act."""
        await receipts.forget(self._store, key)


def repeated_answer(activity: dict[str, Any]) -> web.Response:
    """The answer to a repeated activity: 200, and for a card click a short message."""
    if activity.get("type") == "invoke":
        return web.json_response(
            {
                "statusCode": 200,
                "type": "application/vnd.microsoft.activity.message",
                "value": ALREADY_DONE,
            }
        )
    return web.Response(status=200)
