"""Per-host circuit breakers: open on a failure rate, probe half-open, recover."""

from __future__ import annotations

import pytest

from core.breaker import BreakerPolicy, Breakers, BreakerState, CircuitBreaker, CircuitOpen


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(window_seconds=10, min_calls=4, failure_rate=0.5, open_seconds=5)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (a call, so that an earlier assert does not fix its type)."""
    return breaker.state


def test_breaker_failure_rate_reached_opens() -> None:
    """Half of at least four calls failing in the window opens the breaker."""
    clock = Clock()
    breaker = CircuitBreaker("https://h", POLICY, clock)
    for ok in (True, False, True, False):
        breaker.before_call()
        breaker.record(ok)
    assert state(breaker) is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(5)


def test_breaker_too_few_calls_stays_closed() -> None:
    """Three failures are below the minimum number of calls: still closed."""
    breaker = CircuitBreaker("https://h", POLICY, Clock())
    for _ in range(3):
        breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED


def test_breaker_old_failures_leave_window() -> None:
    """Failures older than the window no longer count."""
    clock = Clock()
    breaker = CircuitBreaker("https://h", POLICY, clock)
    for _ in range(3):
        breaker.record(False)
    clock.now += 11
    breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED


def test_breaker_half_open_probe_success_closes() -> None:
    """After open_seconds one probe goes out; its success closes the breaker."""
    clock = Clock()
    breaker = CircuitBreaker("https://h", POLICY, clock)
    for _ in range(4):
        breaker.record(False)
    clock.now += 5
    assert state(breaker) is BreakerState.HALF_OPEN
    breaker.before_call()
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    breaker.record(True)
    assert state(breaker) is BreakerState.CLOSED


def test_breaker_half_open_probe_failure_reopens() -> None:
    """A failed probe opens the breaker for another open_seconds."""
    clock = Clock()
    breaker = CircuitBreaker("https://h", POLICY, clock)
    for _ in range(4):
        breaker.record(False)
    clock.now += 5
    breaker.before_call()
    breaker.record(False)
    assert breaker.snapshot() == {"state": "open", "retry_in_seconds": 5.0}


def test_breakers_one_per_host_snapshot() -> None:
    """Each host has its own breaker, and the snapshot lists them all."""
    breakers = Breakers(POLICY, Clock())
    for _ in range(4):
        breakers.for_host("https://a").record(False)
    breakers.for_host("https://b").record(True)
    assert breakers.snapshot()["https://a"]["state"] == "open"
    assert breakers.snapshot()["https://b"] == {"state": "closed"}
    assert breakers.is_open("https://a/v3/conversations") and not breakers.is_open("https://b/")


def test_breaker_steady_traffic_counts_only_the_window() -> None:
    """Under a minute of steady calls only the last window's calls weigh against failures."""
    clock = Clock()
    breaker = CircuitBreaker("https://h", POLICY, clock)
    for _ in range(6_000):  # 100 calls a second for a minute, 1,000 in the last window
        clock.now += 0.01
        breaker.record(True)
    for _ in range(900):
        breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED
    for _ in range(200):
        breaker.record(False)
    assert state(breaker) is BreakerState.OPEN
