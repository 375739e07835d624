"""Group commit: writes that arrive together share one batch; each caller gets its result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.store.group_commit import GroupCommit


class _Writer:
    """Records each batch; answers each item doubled, or fails the batches it is told to."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)  # a commit takes a while; more writes queue meanwhile
        if self.fail:
            raise OSError("disk full")
        return [item * 2 for item in items]


async def test_writes_arriving_together_share_batches_each_gets_its_own_result() -> None:
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer)
    results = await asyncio.gather(*(commits.submit(i) for i in range(50)))
    assert results == [i * 2 for i in range(50)]
    assert len(writer.batches) <= 2  # the first alone (or with all), then the rest together
    assert sorted(i for batch in writer.batches for i in batch) == list(range(50))


async def test_one_write_alone_is_written_at_once() -> None:
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer)
    assert await commits.submit(7) == 14
    assert await commits.submit(8) == 16
    assert writer.batches == [[7], [8]]


async def test_batch_size_is_bounded() -> None:
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer, max_batch=10)
    await asyncio.gather(*(commits.submit(i) for i in range(35)))
    assert max(len(batch) for batch in writer.batches) <= 10


async def test_failed_batch_fails_each_of_its_callers_and_the_next_goes_on() -> None:
    writer = _Writer(fail=True)
    commits: GroupCommit[int, int] = GroupCommit(writer)
    outcomes = await asyncio.gather(*(commits.submit(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes)
    writer.fail = False
    assert await commits.submit(3) == 6


async def test_cancelled_caller_does_not_stop_the_others() -> None:
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer)
    first = asyncio.create_task(commits.submit(1))
    second = asyncio.create_task(commits.submit(2))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 4
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_close_waits_for_what_was_submitted() -> None:
    """``close`` returns only after every queued write is written."""
    writer = _Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer, max_batch=4)
    tasks = [asyncio.create_task(commits.submit(i)) for i in range(10)]
    await asyncio.sleep(0)
    await commits.close()
    assert sorted(i for batch in writer.batches for i in batch) == list(range(10))
    assert [task.result() for task in tasks] == [i * 2 for i in range(10)]
