"""What the ITSM sandboxes (ServiceNow, JSM) keep alike: a movable clock and fault switches.

Each sandbox adds its own records, credentials and fault setters; the middleware of each
reads ``is_down``, ``rate_rule`` and ``take_failure`` as the requests come.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TypeVar

from sandbox.request_log import RequestLog, Summarised
from sandbox.servicenow_faults import Failure, RateRule

R = TypeVar("R", bound=Summarised)


class ItsmSite(RequestLog[R]):
    """A request log with the sandbox's own time and its queued failures, rate limit and
    "down" mode. Not thread-safe: use it from the event loop that serves its app."""

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        """Start with no fault; ``clock`` (epoch seconds) is the base of the sandbox's time."""
        super().__init__(name)
        self._base_clock, self._offset = clock, 0.0
        self._failures: list[Failure] = []
        self.rate_rule: RateRule | None = None
        self.is_down = False

    def clock(self) -> float:
        """The sandbox's time in epoch seconds (the base clock plus any advance)."""
        return self._base_clock() + self._offset

    def now(self) -> datetime.datetime:
        """The sandbox's time as an aware UTC datetime (moved by ``advance_clock``)."""
        return datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)

    def advance_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass on the sandbox (timestamps move, tokens expire) at once."""
        self._offset += seconds

    def take_failure(self) -> Failure | None:
        """Consume one use of the first queued failure and return it (None if none)."""
        if not self._failures:
            return None
        failure = self._failures[0]
        failure.remaining -= 1
        if failure.remaining == 0:
            self._failures.pop(0)
        return failure
