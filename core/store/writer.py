"""SQLite's one writer thread: writes queued together share one transaction.

A write is a synchronous ``work(conn, arg)`` run on the thread in one call (one hop, not
one per statement). Writes that queue while a group commits go together in the next group's
transaction, each in a savepoint of its own: a work that raises is undone alone (its caller
gets the error) and the others commit together, one ``COMMIT`` for all. A write alone keeps a
transaction of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from core.store.group_commit import GroupCommit

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class _Write(Generic[R]):
    """A write queued for the writer thread: ``work(conn, arg)``."""

    work: Callable[[Connection, Any], R]
    arg: Any


@dataclass(frozen=True)
class _Written(Generic[R]):
    """What a queued write came to: its result, or the error its work raised."""

    value: R | None
    error: Exception | None = None


class SqliteWriter:
    """The thread that writes to one SQLite file through ``engine`` (its own connection);
    ``lock`` keeps the process's other writes (``Store.writing``) out of its transactions."""

    def __init__(self, engine: Engine, lock: asyncio.Lock) -> None:
        self.engine = engine
        self._lock = lock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writes: GroupCommit[_Write[Any], _Written[Any]] = GroupCommit(self._write_group)

    async def run(self, work: Callable[[Connection, A], R], arg: A) -> R:
        """``work(conn, arg)``'s result once committed; its own error if it raised.

        ``OperationalError`` when the group's commit failed (nothing of it is stored).
        """
        written = await self._writes.submit(_Write(work, arg))
        if written.error is not None:
            raise written.error  # its own failure, the group's commit went on
        return cast(R, written.value)

    async def close(self) -> None:
        """Write what was queued, then stop the thread and close the connection."""
        await self._writes.close()
        self._thread.shutdown(wait=True)
        self.engine.dispose()

    async def _write_group(self, writes: Sequence[_Write[Any]]) -> list[_Written[Any]]:
        loop = asyncio.get_running_loop()
        async with self._lock:
            return await loop.run_in_executor(self._thread, self._write_sync, writes)

    def _write_sync(self, writes: Sequence[_Write[Any]]) -> list[_Written[Any]]:
        if len(writes) == 1:  # alone: in a transaction of its own
            try:
                with self.engine.begin() as conn:
                    return [_Written(writes[0].work(conn, writes[0].arg))]
            except OperationalError:
                raise  # the store failed: its caller is told it is unavailable
            except Exception as exc:  # noqa: BLE001 - rolled back, handed to its caller
                return [_Written(None, exc)]
        done: list[_Written[Any]] = []
        with self.engine.begin() as conn:
            for write in writes:
                try:
                    with conn.begin_nested():
                        done.append(_Written(write.work(conn, write.arg)))
                except Exception as exc:  # noqa: BLE001 - undone alone, handed to its caller
                    done.append(_Written(None, exc))
        return done
