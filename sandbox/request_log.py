"""The request log every sandbox server keeps, and ``wait_for`` on it (no polling).

Tests await a condition on the log; each logged request wakes the waiters, which re-check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, Self, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Summarised(Protocol):
    """A log entry that can describe itself in one line (no bodies, no credentials)."""

    def summary(self) -> str:
        """One line: method, path, status."""


R = TypeVar("R", bound=Summarised)


class RequestLog(Generic[R]):
    """A sandbox's request log, oldest first, with ``wait_for``."""

    def __init__(self, name: str) -> None:
        """Start with an empty log; ``name`` prefixes log lines and timeout messages."""
        self._name = name
        self._log: list[R] = []
        self._waiters: set[asyncio.Event] = set()

    def record(self, entry: R) -> None:
        """Append a request to the log and wake every ``wait_for``."""
        self._log.append(entry)
        logger.debug("%s: %s", self._name, entry.summary())
        for waiter in self._waiters:
            waiter.set()

    @property
    def requests(self) -> list[R]:
        """A copy of the request log, oldest first."""
        return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._log.clear()

    async def wait_for(
        self,
        predicate: Callable[[Self], T],
        timeout: float = 10.0,  # noqa: ASYNC109 - documented test-helper API
    ) -> T:
        """Wait until ``predicate(self)`` is truthy and return its value.

        Re-checked after every logged request (no polling). Raises TimeoutError, with a
        summary of the request log, after ``timeout`` seconds.
        """
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                while not (result := predicate(self)):
                    await waiter.wait()
                    waiter.clear()
                return result
        except TimeoutError:
            lines = "\n  ".join(e.summary() for e in self._log[-20:]) or "(none)"
            raise TimeoutError(
                f"{self._name}: condition not met within {timeout}s; "
                f"{len(self._log)} request(s) logged, latest:\n  {lines}"
            ) from None
        finally:
            self._waiters.discard(waiter)
