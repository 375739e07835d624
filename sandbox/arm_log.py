"""The request log and fault switches of the ARM sandbox (the base of ``ArmSandbox``).

Faults are queued per service (``arm``, ``graph``, ``login``), with the Fault and
FaultQueue of ``sandbox.connector_faults``; "down" mode answers 503 for a whole service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Self, TypeVar

from sandbox.arm_records import SERVICES, RequestRecord, Service
from sandbox.connector_faults import Fault, FaultQueue

logger = logging.getLogger("sandbox.arm")

T = TypeVar("T")


class SandboxLog:
    """Request log, ``wait_for`` and per-service faults; not thread-safe."""

    def __init__(self) -> None:
        """Start with an empty log and no faults."""
        self.faults: dict[Service, FaultQueue] = {service: FaultQueue() for service in SERVICES}
        self._down: dict[Service, float | None] = {}
        self._log: list[RequestRecord] = []
        self._waiters: set[asyncio.Event] = set()

    # Faults.

    def add_fault(self, fault: Fault, service: Service = "arm") -> Fault:
        """Queue a fault for one service ("arm", "graph" or "login") and return it."""
        return self.faults[service].add(fault)

    def set_down(
        self, down: bool = True, retry_after: float | None = None, service: Service = "arm"
    ) -> None:
        """Switch a service's "down" mode: every call answers 503 (with Retry-After if set)."""
        if down:
            self._down[service] = retry_after
        else:
            self._down.pop(service, None)

    def is_down(self, service: Service) -> bool:
        """Tell whether a service is in "down" mode."""
        return service in self._down

    def down_retry_after(self, service: Service) -> float | None:
        """Return the Retry-After seconds of a down service (None when unset)."""
        return self._down.get(service)

    def clear_faults(self) -> None:
        """Drop every queued fault and leave "down" mode on every service."""
        for queue in self.faults.values():
            queue.clear()
        self._down.clear()

    # Request log.

    def record(self, entry: RequestRecord) -> None:
        """Append a request to the log and wake every ``wait_for``."""
        self._log.append(entry)
        logger.debug("arm sandbox: %s", entry.summary())
        for waiter in self._waiters:
            waiter.set()

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._log.clear()

    def calls(
        self,
        operation: str | None = None,
        *,
        service: Service | None = None,
        incident_id: str | None = None,
        successful: bool = False,
    ) -> list[RequestRecord]:
        """Return logged requests matching every given criterion (operation: swagger id)."""
        return [
            entry
            for entry in self._log
            if (operation is None or entry.operation == operation)
            and (service is None or entry.service == service)
            and (incident_id is None or (entry.incident_id or "").lower() == incident_id.lower())
            and (not successful or entry.ok)
        ]

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
                f"arm sandbox: condition not met within {timeout}s; "
                f"{len(self._log)} request(s) logged, latest:\n  {lines}"
            ) from None
        finally:
            self._waiters.discard(waiter)
