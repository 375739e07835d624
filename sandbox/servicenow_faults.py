"""Fault switches and the rate-limit rule of the ServiceNow sandbox.

* ``Failure``: the next ``count`` requests answer ``status`` (Retry-After and body optional).
* ``RateRule``: one ``sys_rate_limit_rules`` row for all users, ``limit`` requests per
  fixed window (an hour on an instance; any length here). Every matching answer carries
  ``X-RateLimit-Limit``, ``X-RateLimit-Reset`` (UNIX time the window ends) and
  ``X-RateLimit-Rule`` (the rule's sys_id), as the description and the product documentation
  say; a refused request gets 429 with ``Retry-After`` (seconds) as well.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Failure:
    """The next ``remaining`` requests answer ``status`` (with ``body`` if given)."""

    remaining: int
    status: int
    retry_after: float | None = None
    body: Any = None

    def __post_init__(self) -> None:
        """Refuse a failure that would do nothing or is not an error."""
        if self.remaining < 1:
            raise ValueError("count must be at least 1")
        if not 400 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP error status")


@dataclass
class RateRule:
    """A rate-limit rule counting every API request in fixed windows."""

    limit: int
    window_seconds: float
    rule_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    window_start: float | None = None
    count: int = 0

    def __post_init__(self) -> None:
        """Refuse a rule that could never admit a request."""
        if self.limit < 1 or self.window_seconds <= 0:
            raise ValueError("limit and window_seconds must be positive")

    def admit(self, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request at ``now``; return whether it may run, and the headers to add."""
        if self.window_start is None or now >= self.window_start + self.window_seconds:
            self.window_start, self.count = now, 0
        reset = self.window_start + self.window_seconds
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Reset": str(math.ceil(reset)),
            "X-RateLimit-Rule": self.rule_id,
        }
        if self.count >= self.limit:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return False, headers
        self.count += 1
        return True, headers
