"""Per-host circuit breakers: stop calling a host that keeps failing, probe it, recover.

Closed → open when, within ``window_seconds``, at least ``min_calls`` calls were made and the
share of failures reached ``failure_rate``. Calls are counted in buckets of at most a second
(a thirtieth of the window when it is shorter), so recording a call costs the same at any
rate and a breaker's memory does not grow with traffic; a call leaves the window with its
bucket, at most one bucket later than its own time. Open → half-open after ``open_seconds``:
one probe call is let through; its success closes the breaker, its failure opens it again. A
failure is a call that got no answer or a 5xx; a 4xx (the host answered) is not a failure.
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
        self._step = min(1.0, policy.window_seconds / 30)
        self._buckets: deque[list[float]] = deque()  # [start, calls, failures], oldest first
        self._count = 0
        self._failures = 0
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
                self._forget()
            else:
                self._open(now)
            return
        self._count_call(now, ok)
        if (
            self._count >= self._policy.min_calls
            and self._failures / self._count >= self._policy.failure_rate
        ):
            self._open(now)

    def _count_call(self, now: float, ok: bool) -> None:
        """Add a call to its bucket and drop the buckets that left the window."""
        start = now - now % self._step
        if self._buckets and self._buckets[-1][0] >= start:
            bucket = self._buckets[-1]
        else:
            bucket = [start, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += 0 if ok else 1
        self._count += 1
        self._failures += 0 if ok else 1
        horizon = now - self._policy.window_seconds
        while self._buckets and self._buckets[0][0] + self._step <= horizon:
            _, calls, failures = self._buckets.popleft()
            self._count -= int(calls)
            self._failures -= int(failures)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._forget()

    def _forget(self) -> None:
        self._buckets.clear()
        self._count = self._failures = 0

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
