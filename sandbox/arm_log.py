"""The request log and fault switches of the ARM sandbox (the base of ``ArmSandbox``).

Faults are queued per service (``arm``, ``graph``, ``login``), with the Fault and
FaultQueue of ``sandbox.connector_faults``; "down" mode answers 503 for a whole service.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from sandbox.arm_records import SERVICES, RequestRecord, Service
from sandbox.connector_faults import Fault, FaultQueue
from sandbox.request_log import RequestLog

logger = logging.getLogger("sandbox.arm")

T = TypeVar("T")


class SandboxLog(RequestLog[RequestRecord]):
    """Request log, ``wait_for`` and per-service faults; not thread-safe."""

    def __init__(self) -> None:
        """Start with an empty log and no faults."""
        super().__init__("arm sandbox")
        self.faults: dict[Service, FaultQueue] = {service: FaultQueue() for service in SERVICES}
        self._down: dict[Service, float | None] = {}

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
