"""Teams pacing: keep each conversation under the documented per-bot, per-thread limits.

Microsoft Teams allows a bot, per conversation (thread): 7 sends a second, 8 in two seconds,
60 in thirty seconds and 1,800 an hour; and per bot across a tenant about 50 a second
("Optimize your bot with rate limiting and best practices in Teams"). ``Pacer.reserve`` takes
a slot when one is free and otherwise says how long to wait, so a burst is spread out instead
of drawing 429s. A slot is stamped again when its send ends (``settle``), since the send
reached Teams somewhere in between; a send still on the way may reach Teams at any moment
until it ends, so it counts as reaching Teams now, and at least ``margin`` seconds after it
started (a settled one needs no margin: it reached Teams by its stamp at the latest). On a
busy host a send can spend longer than any fixed margin between taking its slot and reaching
Teams (a store write, a token, a queued socket), and the limits must hold then too.
A 429 pauses that conversation only, for the time Teams asked.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable

Window = tuple[float, int]

TEAMS_CONVERSATION_LIMITS: tuple[Window, ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
TEAMS_BOT_LIMITS: tuple[Window, ...] = ((1.0, 50),)
_ALL = "*"


class Slot:
    """One send counted against the limits; ``settle`` moves it to when the send ended.

    A send reaches Teams somewhere between taking its slot and getting its answer, so once the
    answer is in, the slot is stamped with the answer's time: the sends that follow then stay
    under the limits however long this one was on the way (a busy host, a slow network).
    """

    __slots__ = ("settled", "stamp")

    def __init__(self, stamp: float) -> None:
        self.stamp = stamp
        self.settled = False


class Pacer:
    """Sliding-window limits per conversation, plus one across all conversations."""

    def __init__(
        self,
        per_conversation: tuple[Window, ...] = TEAMS_CONVERSATION_LIMITS,
        overall: tuple[Window, ...] = TEAMS_BOT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.25,
    ) -> None:
        self._margin = margin
        self._limits = per_conversation
        self._overall = overall
        self._clock = clock
        self._sent: dict[str, deque[Slot]] = {}
        self._paused_until: dict[str, float] = {}

    def reserve(self, conversation_id: str) -> float:
        """Take a send slot now and return 0, or return the seconds until one frees up."""
        return self.take(conversation_id)[0]

    def take(self, conversation_id: str) -> tuple[float, Slot | None]:
        """Like ``reserve``, also returning the slot taken (to ``settle`` after the send)."""
        now = self._clock()
        paused = self._paused_until.get(conversation_id, 0.0)
        if paused and paused <= now:
            del self._paused_until[conversation_id]
        wait = max(
            paused - now,
            self._wait(conversation_id, self._limits, now),
            self._wait(_ALL, self._overall, now),
        )
        if wait > 0:
            return wait, None
        return 0.0, self._count(conversation_id, now)

    def record(self, conversation_id: str) -> Slot:
        """Count a send that did not wait for a slot (a reply to a person who is waiting).

        Teams counts replies against the same per-conversation limits, so the cards that follow
        a reply must leave room for it.
        """
        return self._count(conversation_id, self._clock())

    def settle(self, slot: Slot) -> None:
        """The send in ``slot`` has ended (answered or failed): stamp it with the time now."""
        slot.stamp = max(slot.stamp, self._clock())
        slot.settled = True

    def pause(self, conversation_id: str, seconds: float) -> None:
        """Hold a conversation back for ``seconds`` (Teams answered 429 with Retry-After)."""
        until = self._clock() + seconds
        self._paused_until[conversation_id] = max(until, self._paused_until.get(conversation_id, 0))

    def _count(self, conversation_id: str, now: float) -> Slot:
        slot = Slot(now)
        self._sent.setdefault(conversation_id, deque()).append(slot)
        self._sent.setdefault(_ALL, deque()).append(slot)
        return slot

    def _wait(self, key: str, limits: tuple[Window, ...], now: float) -> float:
        sent = self._sent.get(key)
        if not sent:
            return 0.0
        longest = limits[-1][0] + self._margin
        while sent and sent[0].stamp <= now - longest:
            sent.popleft()
        if not sent:
            del self._sent[key]
            return 0.0
        # When each send reached Teams at the latest; one still on the way may reach it now.
        stamps = sorted(
            slot.stamp if slot.settled else max(slot.stamp + self._margin, now) for slot in sent
        )
        wait = 0.0
        for span, allowed in limits:
            first = bisect.bisect_right(stamps, now - span)
            if len(stamps) - first >= allowed:
                wait = max(wait, stamps[-allowed] + span - now)
        return wait
