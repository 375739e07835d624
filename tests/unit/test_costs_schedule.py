"""The nightly cost ingest's schedule: the next UTC time of day."""

from __future__ import annotations

from datetime import UTC, datetime, time

from wiring.costs import seconds_until


def test_seconds_until_later_today_waits_until_then() -> None:
    """At 01:00 a 02:30 ingest is 90 minutes away."""
    assert seconds_until(datetime(2026, 11, 26, 1, 0, tzinfo=UTC), time(2, 30)) == 5400


def test_seconds_until_passed_time_waits_for_tomorrow() -> None:
    """At 02:30 exactly, the next 02:30 ingest is a day away."""
    assert seconds_until(datetime(2026, 11, 26, 2, 30, tzinfo=UTC), time(2, 30)) == 86400
