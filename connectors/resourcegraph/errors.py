"""Resource Graph's error envelope, turned into Warden's typed errors.

Resource Graph answers a refused query 400 ``{"error": {"code": "BadRequest", "message":
"Please provide below info when asking for support: timestamp = …, correlationId = …",
"details": [{"code": "InvalidQuery", "message": …}, {"code": "ParserFailure", …}]}}``: the
top message only names the correlation id, the details say what is wrong. The message kept
here is the details' messages (with line and position when given), then the top message, so
a KQL error reaches the operator in the service's own words. Throttling is 429 with
``x-ms-user-quota-resets-after``; ARM's own refusals use the plain ARM envelope.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.arm_errors import ArmErrorKinds, ArmServiceError, envelope
from connectors.http import parse_duration, server_delay
from core.errors import Outcome


class ResourceGraphError(ArmServiceError):
    """A call to Resource Graph failed; ``code`` and ``message`` are the service's words."""

    service = "Resource Graph"
    user_message = "Azure Resource Graph could not complete the request."


class ResourceGraphQueryError(ResourceGraphError):
    """400: the query (or its options) was refused; ``message`` says why, as the service did."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """The service's explanation of the refused query."""
        return f"Azure Resource Graph refused the query: {self.message}"


class ResourceGraphThrottled(ResourceGraphError):
    """429: the per-user quota is spent; ``retry_after`` is when it resets."""

    user_message = "Azure Resource Graph is throttling Warden; it will try again shortly."


class ResourceGraphUnavailable(ResourceGraphError):
    """5xx after the retries allowed, or no answer at all (timeouts, resets, open breaker)."""

    user_message = "Azure Resource Graph cannot be reached right now."


class ResourceGraphRefused(ResourceGraphError):
    """401/403/404 or another 4xx: the request was refused, and the service said why."""

    user_message = "Warden is not allowed to query Azure Resource Graph; ask an administrator."


def _detail_text(detail: Any) -> str | None:
    """One detail as a line: its message, with the code and position when given."""
    if not isinstance(detail, dict) or not detail.get("message"):
        return None
    where = [f"line {detail['line']}"] if detail.get("line") is not None else []
    if detail.get("characterPositionInLine") is not None:
        where.append(f"position {detail['characterPositionInLine']}")
    suffix = f" ({', '.join([str(detail.get('code') or 'error'), *where])})"
    return f"{detail['message']}{suffix}"


def service_message(response: httpx.Response) -> tuple[str, str]:
    """The code and the full message of an error answer: the details first, then the top."""
    code, message = envelope(response)
    try:
        body = response.json()
    except ValueError:
        return code, message
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    lines = [t for t in (_detail_text(d) for d in details or []) if t]
    return code, "; ".join([*lines, message]) if lines else message


def quota_delay(response: httpx.Response) -> float | None:
    """The delay an answer asks for; for a 429 without one, until the quota resets."""
    headers = response.headers
    delay = server_delay(headers)
    if delay is None and response.status_code == 429:
        delay = parse_duration(headers.get("x-ms-user-quota-resets-after"))
    return delay


ERRORS = ArmErrorKinds(
    ResourceGraphError,
    refused=ResourceGraphRefused,
    unavailable=ResourceGraphUnavailable,
    by_status={400: ResourceGraphQueryError, 429: ResourceGraphThrottled},
    credential_refused=Outcome.FAIL,
    read=service_message,
    delay=quota_delay,
)
"""400 → ``ResourceGraphQueryError`` (with the details' messages); 429 →
``ResourceGraphThrottled``; 5xx → ``ResourceGraphUnavailable``; any other →
``ResourceGraphRefused``. A credential the token endpoint refused fails; one that could not
reach it is retried."""
