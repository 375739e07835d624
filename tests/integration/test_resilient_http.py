"""The resilient HTTP layer against the real ARM sandbox over TLS: retries, deadline, breaker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from connectors.http import (
    AttemptReport,
    ResilientTransport,
    RetryPolicy,
    resilient_client,
)
from core.breaker import BreakerPolicy, Breakers, BreakerState
from core.errors import DeliveryError, Outcome
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox

API = "api-version=2025-12-01"
FAST = RetryPolicy(attempts=4, timeout=10.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)
"""No backoff waits, so only a server-named delay (Retry-After) makes a test wait."""

GOOD_INCIDENT = {"properties": {"title": "Resilience", "severity": "High", "status": "New"}}


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over HTTPS, with one incident in the default workspace."""
    async with run_arm_sandbox() as sandbox:
        sandbox.create_incident(name="resilience-1")
        yield sandbox


def incident_url(arm: ArmSandbox, suffix: str = "") -> str:
    """The incident's URL (path and api-version) relative to the sandbox."""
    return str(arm.incident("resilience-1")["id"]) + suffix + "?" + API


def client(
    arm: ArmSandbox,
    *,
    breakers: Breakers | None = None,
    policy: RetryPolicy = FAST,
    on_attempt: Callable[[AttemptReport], None] | None = None,
) -> httpx.AsyncClient:
    """A resilient client for the sandbox, trusting its CA, with an ARM bearer token."""
    return resilient_client(
        breakers=breakers or Breakers(),
        policy=policy,
        base_url=arm.url,
        verify=arm.ssl_context(),
        headers={"Authorization": f"Bearer {arm.issue_token()}"},
        on_attempt=on_attempt,
    )


def sent(arm: ArmSandbox, method: str) -> int:
    """How many ``method`` requests reached the sandbox's ARM service."""
    return sum(1 for r in arm.requests if r.service == "arm" and r.method == method)


async def test_transport_get_after_one_503_retries_and_succeeds(arm: ArmSandbox) -> None:
    """A GET answered 503 once is retried and its 200 returned; two requests were sent."""
    arm.add_fault(Fault(status=503, method="GET"))
    async with client(arm) as http:
        response = await http.get(incident_url(arm))
    assert response.status_code == 200
    assert response.json()["name"] == "resilience-1"
    assert [r.status for r in arm.calls("Incidents_Get")] == [503, 200]


async def test_transport_get_429_retry_after_waits_then_succeeds(arm: ArmSandbox) -> None:
    """A 429 with Retry-After: 1 is retried after at least one second, then succeeds."""
    arm.add_fault(Fault(status=429, retry_after=1, method="GET"))
    async with client(arm) as http:
        started = time.perf_counter()
        response = await http.get(incident_url(arm))
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert 1.0 <= elapsed < 3.0
    calls = arm.calls("Incidents_Get")
    assert [r.status for r in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 0.99


async def test_transport_retry_after_beyond_deadline_returns_429_at_once(
    arm: ArmSandbox,
) -> None:
    """A Retry-After longer than the deadline is not waited for: the 429 comes back."""
    arm.add_fault(Fault(status=429, retry_after=5, method="GET"))
    policy = RetryPolicy(attempts=4, timeout=2.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0)
    async with client(arm, policy=policy) as http:
        started = time.perf_counter()
        response = await http.get(incident_url(arm))
        elapsed = time.perf_counter() - started
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert elapsed < 1.0
    assert sent(arm, "GET") == 1


async def test_transport_plain_post_503_tried_once_returns_503(arm: ArmSandbox) -> None:
    """A POST without an idempotency key is not replayed: the 503 is returned."""
    arm.add_fault(Fault(status=503, method="POST", times=None))
    async with client(arm) as http:
        response = await http.post(incident_url(arm, "/alerts"))
    assert response.status_code == 503
    assert response.json()["error"]["code"]
    assert sent(arm, "POST") == 1


async def test_transport_post_with_idempotency_key_retried_and_succeeds(arm: ArmSandbox) -> None:
    """A POST carrying an Idempotency-Key is retried after a 503."""
    arm.add_fault(Fault(status=503, method="POST"))
    async with client(arm) as http:
        response = await http.post(
            incident_url(arm, "/alerts"), headers={"Idempotency-Key": "alerts-resilience-1"}
        )
    assert response.status_code == 200
    assert "value" in response.json()
    assert [r.status for r in arm.calls("Incidents_ListAlerts")] == [503, 200]


async def test_transport_post_marked_idempotent_retried_and_succeeds(arm: ArmSandbox) -> None:
    """A POST with the warden_idempotent extension is retried after a dropped connection."""
    arm.add_fault(Fault(drop=True, method="POST"))
    async with client(arm) as http:
        response = await http.post(
            incident_url(arm, "/alerts"), extensions={"warden_idempotent": True}
        )
    assert response.status_code == 200
    assert sent(arm, "POST") == 2


async def test_transport_plain_post_dropped_raises_retry_after_one_try(arm: ArmSandbox) -> None:
    """A plain POST whose connection drops is not replayed: DeliveryError(RETRY), no status."""
    arm.add_fault(Fault(drop=True, method="POST", times=None))
    async with client(arm) as http:
        with pytest.raises(DeliveryError) as caught:
            await http.post(incident_url(arm, "/alerts"))
    assert caught.value.outcome is Outcome.RETRY
    assert caught.value.status is None
    assert caught.value.attempted
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert sent(arm, "POST") == 1


async def test_transport_put_400_not_retried_returns_400(arm: ArmSandbox) -> None:
    """A PUT the service refuses (400, FAIL) is sent once and the 400 returned."""
    async with client(arm) as http:
        response = await http.put(incident_url(arm), json={"properties": {}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert sent(arm, "PUT") == 1


async def test_transport_put_503_retried_and_succeeds(arm: ArmSandbox) -> None:
    """A PUT (idempotent by name) answered 503 is retried and succeeds."""
    arm.add_fault(Fault(status=503, method="PUT"))
    async with client(arm) as http:
        response = await http.put(incident_url(arm), json=GOOD_INCIDENT)
    assert response.status_code == 200
    assert [r.status for r in arm.calls("Incidents_CreateOrUpdate")] == [503, 200]


async def test_transport_streamed_put_503_tried_once_returns_503(arm: ArmSandbox) -> None:
    """A PUT whose body is a stream cannot be replayed: sent once, the 503 returned."""
    arm.add_fault(Fault(status=503, method="PUT", times=None))

    async def body() -> AsyncIterator[bytes]:
        yield json.dumps(GOOD_INCIDENT).encode()

    async with client(arm) as http:
        response = await http.put(
            incident_url(arm), content=body(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 503
    assert sent(arm, "PUT") == 1


async def test_transport_get_dropped_connection_retried_and_succeeds(arm: ArmSandbox) -> None:
    """A GET whose connection is dropped without an answer is retried and succeeds."""
    arm.add_fault(Fault(drop=True, method="GET"))
    async with client(arm) as http:
        response = await http.get(incident_url(arm))
    assert response.status_code == 200
    assert [r.status for r in arm.calls("Incidents_Get")] == [None, 200]


async def test_transport_get_503_five_times_three_attempts_returns_last_503(
    arm: ArmSandbox,
) -> None:
    """With attempts=3 against five 503s, three requests go out and the last 503 returns."""
    arm.add_fault(Fault(status=503, method="GET", times=5))
    policy = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0)
    async with client(arm, policy=policy) as http:
        response = await http.get(incident_url(arm))
    assert response.status_code == 503
    assert response.json()["error"]["code"]
    assert sent(arm, "GET") == 3


async def test_transport_slow_host_past_deadline_raises_retry_in_deadline(
    arm: ArmSandbox,
) -> None:
    """Answers slower than the deadline end in DeliveryError(RETRY) at about the deadline."""
    arm.add_fault(Fault(delay=1.0, method="GET", times=None))
    policy = RetryPolicy(attempts=4, timeout=0.5, wait_initial=0.0, wait_max=0.0, wait_jitter=0)
    async with client(arm, policy=policy) as http:
        started = time.perf_counter()
        with pytest.raises(DeliveryError) as caught:
            await http.get(incident_url(arm))
        elapsed = time.perf_counter() - started
    assert caught.value.outcome is Outcome.RETRY
    assert caught.value.status is None
    assert caught.value.attempted
    assert 0.5 <= elapsed < 1.0


async def test_breaker_repeated_failures_opens_then_refuses_then_probes(arm: ArmSandbox) -> None:
    """Failures open the breaker; calls are refused unsent; after open_seconds a probe goes."""
    now = [0.0]
    policy = BreakerPolicy(window_seconds=60, min_calls=3, failure_rate=0.5, open_seconds=30)
    breakers = Breakers(policy, clock=lambda: now[0])
    arm.add_fault(Fault(status=503, method="GET", times=3))
    three = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0)
    async with client(arm, breakers=breakers, policy=three) as http:
        assert (await http.get(incident_url(arm))).status_code == 503
        assert sent(arm, "GET") == 3
        with pytest.raises(DeliveryError) as caught:
            await http.get(incident_url(arm))
        assert not caught.value.attempted
        assert caught.value.outcome is Outcome.RETRY
        assert caught.value.retry_after == pytest.approx(30)
        assert sent(arm, "GET") == 3
        now[0] += 30
        assert (await http.get(incident_url(arm))).status_code == 200
    assert sent(arm, "GET") == 4
    assert breakers.for_host(arm.url).state is BreakerState.CLOSED


async def test_transport_breaker_opening_mid_call_stops_retries(arm: ArmSandbox) -> None:
    """When its own failures open the breaker, a call stops retrying and returns the 503."""
    breakers = Breakers(BreakerPolicy(min_calls=2, failure_rate=0.5, open_seconds=30))
    arm.add_fault(Fault(status=503, method="GET", times=None))
    async with client(arm, breakers=breakers) as http:
        response = await http.get(incident_url(arm))
    assert response.status_code == 503
    assert sent(arm, "GET") == 2
    assert breakers.for_host(arm.url).state is BreakerState.OPEN


async def test_transport_4xx_answers_keep_breaker_closed(arm: ArmSandbox) -> None:
    """429s and 404s show the host is up: they never open its breaker."""
    breakers = Breakers(BreakerPolicy(min_calls=2, failure_rate=0.5, open_seconds=30))
    arm.add_fault(Fault(status=429, retry_after=0, method="GET", times=3))
    async with client(arm, breakers=breakers) as http:
        assert (await http.get(incident_url(arm))).status_code == 200
        missing = arm.incident("resilience-1")["id"].replace("resilience-1", "nope")
        assert (await http.get(f"{missing}?{API}")).status_code == 404
    assert breakers.for_host(arm.url).state is BreakerState.CLOSED


async def test_transport_on_attempt_reports_each_send(arm: ArmSandbox) -> None:
    """Every send is reported with host, method, attempt number, status or error, duration."""
    reports: list[AttemptReport] = []
    arm.add_fault(Fault(drop=True, method="GET"))
    arm.add_fault(Fault(status=503, method="GET"))
    async with client(arm, on_attempt=reports.append) as http:
        assert (await http.get(incident_url(arm))).status_code == 200
    assert [(r.attempt, r.status, r.error) for r in reports] == [
        (1, None, "RemoteProtocolError"),
        (2, 503, None),
        (3, 200, None),
    ]
    assert {(r.host, r.method) for r in reports} == {(arm.url, "GET")}
    assert all(r.duration >= 0 for r in reports)


async def test_transport_retry_logged_without_query_or_token(
    arm: ArmSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry is one INFO line with method, host, path and status; no query, no token."""
    arm.add_fault(Fault(status=503, method="GET"))
    token = arm.issue_token()
    with caplog.at_level(logging.INFO, logger="connectors.http"):
        async with client(arm) as http:
            await http.get(incident_url(arm), headers={"Authorization": f"Bearer {token}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "connectors.http"]
    assert len(lines) == 1
    path = arm.incident("resilience-1")["id"]
    assert lines[0].startswith(f"retrying GET {arm.url}{path} after status 503 (attempt 1")
    assert "api-version" not in lines[0]
    assert token not in caplog.text
    assert "Bearer" not in caplog.text


async def test_transport_x_ms_retry_after_ms_honoured() -> None:
    """ARM's x-ms-retry-after-ms is preferred to Retry-After and waited for."""
    answers = iter(
        [
            httpx.Response(429, headers={"x-ms-retry-after-ms": "300", "Retry-After": "30"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers)

    transport = ResilientTransport(Breakers(), FAST, httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as http:
        started = time.perf_counter()
        response = await http.get("https://management.example/x")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert 0.3 <= elapsed < 2.0


async def test_transport_backoff_past_deadline_not_scheduled_returns_503(
    arm: ArmSandbox,
) -> None:
    """A retry whose jittered backoff could end past the deadline is not scheduled."""
    arm.add_fault(Fault(status=503, method="GET", times=None))
    policy = RetryPolicy(attempts=5, timeout=1.2, wait_initial=0.4, wait_max=5.0, wait_jitter=0.5)
    async with client(arm, policy=policy) as http:
        started = time.perf_counter()
        response = await http.get(incident_url(arm))
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert sent(arm, "GET") == 2
    assert 0.4 <= elapsed < 1.2


async def test_transport_cancelled_probe_reopens_breaker(arm: ArmSandbox) -> None:
    """A half-open probe cancelled before its answer reopens the breaker instead of sticking."""
    now = [0.0]
    policy = BreakerPolicy(min_calls=1, failure_rate=0.5, open_seconds=30)
    breakers = Breakers(policy, clock=lambda: now[0])
    breaker = breakers.for_host(arm.url)
    breaker.record(False)
    now[0] += 30
    assert breaker.state is BreakerState.HALF_OPEN
    arm.add_fault(Fault(delay=1.0, method="GET"))
    async with client(arm, breakers=breakers) as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.get(incident_url(arm))
        assert breaker.snapshot()["state"] == "open"
        now[0] += 30
        assert (await http.get(incident_url(arm))).status_code == 200
    assert breaker.snapshot()["state"] == "closed"
