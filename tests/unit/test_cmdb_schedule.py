"""When the nightly CMDB sync is due."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from connectors.resourcegraph.cmdb_sync import CmdbRun
from connectors.resourcegraph.nightly import is_due
from core.schedule import parse_time_of_day

AT = time(1, 30, tzinfo=UTC)
STARTED = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def finished(at: datetime) -> CmdbRun:
    """A run that finished at ``at``."""
    return CmdbRun(run=1, started_at=STARTED, finished_at=at)


def test_is_due_first_run_ever_is_due_at_once() -> None:
    """No run yet: due now, whatever the time."""
    assert is_due(None, datetime(2026, 3, 2, 12, 0, tzinfo=UTC), AT, 900)


def test_is_due_finished_tonight_waits_for_the_next_night() -> None:
    """Finished after tonight's slot: not due until the next 01:30."""
    run = finished(datetime(2026, 3, 2, 1, 40, tzinfo=UTC))
    assert not is_due(run, datetime(2026, 3, 2, 23, 59, tzinfo=UTC), AT, 900)
    assert not is_due(run, datetime(2026, 3, 3, 1, 29, tzinfo=UTC), AT, 900)
    assert is_due(run, datetime(2026, 3, 3, 1, 30, tzinfo=UTC), AT, 900)


def test_is_due_unfinished_run_resumes_at_once_unless_it_just_failed() -> None:
    """A run a replica left is due now; one that failed waits ``retry_seconds``."""
    left = CmdbRun(run=2, started_at=STARTED, pages=3)
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert is_due(left, now, AT, 900)
    failed = left.model_copy(
        update={"error": "x", "failed_at": datetime(2026, 3, 2, 1, 50, tzinfo=UTC)}
    )
    assert not is_due(failed, now, AT, 900)
    assert is_due(failed, datetime(2026, 3, 2, 2, 5, tzinfo=UTC), AT, 900)


@pytest.mark.parametrize("text", ["1:30", "24:00", "01:60", "0130", ""])
def test_parse_time_of_day_refuses_what_is_not_hh_mm(text: str) -> None:
    """Only a 24-hour ``HH:MM`` is a time of day."""
    with pytest.raises(ValueError, match=r"HH:MM|not a time of day"):
        parse_time_of_day(text)
