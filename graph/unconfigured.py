"""What Graph-backed jobs do while SharePoint is not configured: wait, unspent.

Kept apart from the Graph clients so that a Warden without SharePoint wires these handlers
without loading msgraph-sdk.
"""

from __future__ import annotations

from core.errors import DeliveryError, Outcome
from core.store.outbox import Job

UNCONFIGURED_WAIT = 3600.0
"""Seconds between two looks at a mirror job while SharePoint is not configured."""


async def wait_for_sharepoint(job: Job) -> None:
    """Keep an ``audit.mirror`` job pending while ``WARDEN_SHAREPOINT_SITE`` is not set."""
    raise DeliveryError(
        "WARDEN_SHAREPOINT_SITE is not set: the audit entry waits to be mirrored",
        outcome=Outcome.RETRY,
        retry_after=UNCONFIGURED_WAIT,
        attempted=False,
    )
