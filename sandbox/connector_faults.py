"""Fault switches and a Teams-like rate limiter for the Connector sandbox.

Nothing here depends on the Connector wire format, so other sandboxes may reuse it.

Fault JSON (``POST /_sandbox/faults`` body, or ``Fault.from_json``)::

    {"status": 429, "retry_after": 2,      # answer this status (+ Retry-After seconds)
     "delay": 1.5,                          # wait this long first (alone: slow success)
     "delay_after": 1.5,                    # do the work, then wait this long to answer
     "drop": false,                         # close the connection without an answer
     "drop_after": false,                   # do the work, then close it without an answer
                                            # (delay_after, drop_after: the Connector only)
     "times": 1,                            # how many matching requests; null = until cleared
     "method": "POST", "path": "/activities",   # optional matchers (path: substring)
     "code": "Throttled", "message": "..."}     # optional ErrorResponse overrides
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aiohttp import web

Clock = Callable[[], float]
"""A monotonic clock in seconds."""

Window = tuple[float, int]
"""(period in seconds, maximum operations allowed in that period)."""

# learn.microsoft.com "Optimize your bot with rate limiting in Teams": per bot per thread.
TEAMS_THREAD_LIMITS: Mapping[str, tuple[Window, ...]] = {
    "send": ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800)),
    "create": ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800)),
    "members": ((1.0, 14), (2.0, 16), (30.0, 120), (3600.0, 3600)),
}
"""Per-bot, per-conversation windows for each operation category."""

TEAMS_GLOBAL_LIMITS: tuple[Window, ...] = ((1.0, 50),)
"""Global limit per app per tenant: 50 requests per second."""

_FIELD_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "status": int,
    "retry_after": (int, float),
    "delay": (int, float),
    "delay_after": (int, float),
    "drop": bool,
    "drop_after": bool,
    "times": int,
    "method": str,
    "path": str,
    "code": str,
    "message": str,
}
_REQUIRED_VALUES = frozenset({"delay", "delay_after", "drop", "drop_after"})


def _is_instance(value: object, expected: type | tuple[type, ...]) -> bool:
    """isinstance() that refuses booleans where numbers are expected."""
    if isinstance(value, bool) and expected is not bool:
        return False
    return isinstance(value, expected)


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    delay_after: float = 0.0
    drop: bool = False
    drop_after: bool = False
    times: int | None = 1
    method: str | None = None
    path: str | None = None
    code: str | None = None
    message: str | None = None
    applied: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        """Reject faults that would do nothing or cannot be honoured."""
        acts = self.drop or self.drop_after or self.delay > 0 or self.delay_after > 0
        if self.status is None and not acts:
            raise ValueError(
                "a fault needs a status, drop=true, drop_after=true or a positive delay"
            )
        if self.drop_after and (self.status is not None or self.drop):
            raise ValueError("drop_after answers nothing after the work: no status, no drop")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP error status (400-599)")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1, or None for 'until cleared'")
        if self.delay < 0 or self.delay_after < 0:
            raise ValueError("delay and delay_after must not be negative")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build a fault from its JSON form; raises ValueError on unknown or bad fields."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        unknown = set(data) - set(_FIELD_TYPES)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        for name, value in data.items():
            if value is None and name in _REQUIRED_VALUES:
                raise ValueError(f"fault field {name!r} must not be null")
            if value is not None and not _is_instance(value, _FIELD_TYPES[name]):
                raise ValueError(f"fault field {name!r} has the wrong type")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form, including how many times the fault has fired."""
        return asdict(self)

    def matches(self, method: str, *paths: str) -> bool:
        """Tell whether this fault applies to a request with this method and any of these paths.

        Pass both the decoded and the raw path so either spelling matches.
        """
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or any(self.path in path for path in paths)

    def retry_after_header(self) -> dict[str, str]:
        """Return the Retry-After header (whole seconds, rounded up) if one is set."""
        return retry_after_header(self.retry_after)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """Return ``{"Retry-After": "<n>"}`` with n = ceil(seconds), or {} for None."""
    if seconds is None:
        return {}
    return {"Retry-After": str(math.ceil(seconds))}


class FaultQueue:
    """Ordered faults; the first one matching a request fires and counts down."""

    def __init__(self) -> None:
        """Create an empty queue."""
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Append a fault and return it."""
        self._faults.append(fault)
        return fault

    def take(self, method: str, *paths: str) -> Fault | None:
        """Return the first fault matching the request, consuming one of its uses."""
        for fault in self._faults:
            if fault.matches(method, *paths):
                fault.applied += 1
                if fault.times is not None and fault.applied >= fault.times:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        """Remove every queued fault."""
        self._faults.clear()

    def snapshot(self) -> list[Fault]:
        """Return the pending faults, first to fire first."""
        return list(self._faults)


class RateLimiter:
    """Sliding-window limiter reproducing Teams' per-thread and global bot limits."""

    def __init__(
        self,
        thread_limits: Mapping[str, tuple[Window, ...]] = TEAMS_THREAD_LIMITS,
        global_limits: tuple[Window, ...] = TEAMS_GLOBAL_LIMITS,
        clock: Clock = time.monotonic,
    ) -> None:
        """Create a limiter; ``clock`` is injectable so tests need not wait."""
        self._thread_limits = thread_limits
        self._global_limits = global_limits
        self._clock = clock
        self._history: dict[tuple[str, str], deque[float]] = {}

    def admit(self, category: str, conversation_id: str) -> float | None:
        """Record one operation, or return the seconds to wait if it would exceed a limit.

        Categories without per-thread limits only count against the global limit.
        A refused operation is not recorded.
        """
        now = self._clock()
        keys = [(("*", "*"), self._global_limits)]
        if category in self._thread_limits:
            keys.append(((category, conversation_id), self._thread_limits[category]))
        waits = [self._wait(self._history_for(key, now), windows, now) for key, windows in keys]
        wait = max(waits)
        if wait > 0:
            return wait
        for key, _ in keys:
            self._history_for(key, now).append(now)
        return None

    def reset(self) -> None:
        """Forget every recorded operation."""
        self._history.clear()

    def _history_for(self, key: tuple[str, str], now: float) -> deque[float]:
        """Return the key's timestamps, dropping those older than the longest window."""
        history = self._history.setdefault(key, deque())
        horizon = max(period for windows in self._all_windows() for period, _ in windows)
        while history and history[0] <= now - horizon:
            history.popleft()
        return history

    def _all_windows(self) -> list[tuple[Window, ...]]:
        """Return every configured window set."""
        return [self._global_limits, *self._thread_limits.values()]

    @staticmethod
    def _wait(history: deque[float], windows: tuple[Window, ...], now: float) -> float:
        """Return how long until one more operation fits every window (0 if it fits now)."""
        wait = 0.0
        for period, limit in windows:
            recent = [stamp for stamp in history if stamp > now - period]
            if len(recent) >= limit:
                wait = max(wait, recent[len(recent) - limit] + period - now)
        return wait


class _Marked(Protocol):
    """A request-log entry that records which fault it met."""

    fault: str | None


async def delay_or_drop(
    request: web.Request, fault: Fault, record: _Marked
) -> web.StreamResponse | None:
    """Wait the fault's delay, then drop the connection if it says so.

    Returns the (never sent) response of a dropped request, or ``None`` to go on: with the
    fault's status, or normally.
    """
    record.fault = "delay"
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.drop:
        record.fault = "drop"
        if request.transport is not None:
            request.transport.abort()
        return web.Response()
    return None
