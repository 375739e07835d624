"""Group commit: many small writes that arrive together share one transaction.

Each caller awaits its own result; while one batch is being written, the writes that arrive
queue up and go together in the next, so under load a commit serves many callers and with
one caller nothing waits. The batch is written by a task that lives only while there is work
(no task is left behind at shutdown). A failed batch fails each of its callers with the
error; nothing of it was committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 256
"""The most writes one transaction takes."""


class GroupCommit(Generic[T, R]):
    """Writes items through ``write(items) -> results`` (one result per item, in order)."""

    def __init__(
        self, write: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write ``item`` with the others queued beside it; its result once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def close(self) -> None:
        """Return once everything submitted so far is written (or failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each caller gets it; the queue goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:  # cancelled (shutdown): no caller is left waiting
                for _, future in [*batch, *self._pending]:
                    future.cancel()
                self._pending.clear()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
