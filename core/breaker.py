"""Per-host circuit breakers: stop calling a host that keeps failing, probe it, recover.

Closed → open when, within ``window_seconds``, at least ``min_calls`` calls were made and the
share of failures reached ``failure_rate``. Open → half-open after ``open_seconds``: one probe
call is let through; its success closes the breaker, its failure opens it again. A failure is
a call that got no answer or a 5xx; a 4xx (the host answered) is not a failure.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The host's breaker is open; ``retry_after`` says when a probe will be allowed."""

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(f"circuit open for {host}; next probe in {retry_after:.1f}s")
        self.host = host
        self.retry_after = retry_after


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open."""

    window_seconds: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    open_seconds: float = 30.0


class CircuitBreaker:
    """One host's breaker. Not thread-safe: used from the event loop only."""

    def __init__(
        self, host: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.host = host
        self._policy = policy
        self._clock = clock
        self._calls: deque[tuple[float, bool]] = deque()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker turns half-open once its time is up)."""
        if self._state is BreakerState.OPEN and self._remaining() <= 0:
            self._state = BreakerState.HALF_OPEN
            self._probing = False
        return self._state

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now (half-open: one probe)."""
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpen(self.host, self._remaining())
        if state is BreakerState.HALF_OPEN:
            if self._probing:
                raise CircuitOpen(self.host, self._policy.open_seconds / 10)
            self._probing = True

    def record(self, ok: bool) -> None:
        """Count the outcome of a call that went out."""
        now = self._clock()
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False
            if ok:
                self._state = BreakerState.CLOSED
                self._calls.clear()
            else:
                self._open(now)
            return
        self._calls.append((now, ok))
        while self._calls and self._calls[0][0] < now - self._policy.window_seconds:
            self._calls.popleft()
        failures = sum(1 for _, good in self._calls if not good)
        if (
            len(self._calls) >= self._policy.min_calls
            and failures / len(self._calls) >= self._policy.failure_rate
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._calls.clear()

    def _remaining(self) -> float:
        return max(0.0, self._opened_at + self._policy.open_seconds - self._clock())

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state for ``/readyz`` and ``status``."""
        state = self.state
        facts: dict[str, Any] = {"state": state.value}
        if state is BreakerState.OPEN:
            facts["retry_in_seconds"] = round(self._remaining(), 1)
        return facts


class Breakers:
    """The breakers of every host Warden calls, created on first use."""

    def __init__(
        self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy or BreakerPolicy()
        self._clock = clock
        self._by_host: dict[str, CircuitBreaker] = {}

    def for_host(self, host: str) -> CircuitBreaker:
        """The breaker of ``host`` (``scheme://host:port``)."""
        breaker = self._by_host.get(host)
        if breaker is None:
            breaker = self._by_host[host] = CircuitBreaker(host, self._policy, self._clock)
        return breaker

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every known host's breaker state."""
        return {host: breaker.snapshot() for host, breaker in sorted(self._by_host.items())}

    def is_open(self, url: str) -> bool:
        """True when the breaker of ``url``'s host is open (no breaker yet: closed)."""
        parts = urlsplit(url)
        breaker = self._by_host.get(f"{parts.scheme}://{parts.netloc}")
        return breaker is not None and breaker.state is BreakerState.OPEN
