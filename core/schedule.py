"""Times of day in UTC for nightly jobs: parsing ``HH:MM`` and the latest scheduled slot."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta


def parse_time_of_day(text: str) -> time:
    """``HH:MM`` (24-hour) as a UTC time of day; ``ValueError`` says what is wrong."""
    hours, _, minutes = text.strip().partition(":")
    if not (len(hours) == len(minutes) == 2 and hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"{text!r}: use HH:MM (24-hour, UTC), e.g. 01:30")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return time(int(hours), int(minutes), tzinfo=UTC)


def last_slot(now: datetime, at: time) -> datetime:
    """The latest moment at or before ``now`` whose UTC time of day is ``at``."""
    slot = datetime.combine(now.astimezone(UTC).date(), at.replace(tzinfo=UTC))
    return slot if slot <= now else slot - timedelta(days=1)
