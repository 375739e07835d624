"""One ITSM call with credentials (ServiceNow's Table API, Jira's REST API), shared.

:class:`ItsmSender` sends through the injected resilient ``httpx.AsyncClient`` with an
explicit timeout and the ``Authorization`` header of an ``Authenticator``; after a 401 it
asks a renewable authenticator (OAuth) for new credentials and sends once more. Only a
``repeatable`` request may be sent again by the transport. A failure becomes the
connector's typed error (its :class:`~connectors.itsm_errors.ItsmErrorKinds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import IDEMPOTENT_EXTENSION
from connectors.itsm_errors import ItsmErrorKinds
from core.errors import DeliveryError, Outcome


@dataclass(frozen=True)
class ItsmSender:
    """Sends one connector's requests; the caller owns ``http``."""

    http: httpx.AsyncClient
    auth: Authenticator
    errors: ItsmErrorKinds[Any]
    timeout: httpx.Timeout

    async def send(
        self,
        method: str,
        url: str,
        *,
        label: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        repeatable: bool = False,
    ) -> httpx.Response:
        """Send with credentials; renew them once after a 401; a failure as a typed error.

        ``label`` names the request in the message of a call that got no answer.
        """
        for renewal in (False, True):
            headers = {"Authorization": await self.auth.header(), "Accept": "application/json"}
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self.timeout,
                    extensions={IDEMPOTENT_EXTENSION: True} if repeatable else {},
                )
            except DeliveryError as exc:
                raise self.errors.unavailable.from_delivery(exc) from exc
            except httpx.HTTPError as exc:
                message = f"{method} {label}: {type(exc).__name__}"
                raise self.errors.unavailable(message, outcome=Outcome.RETRY) from exc
            if response.status_code == 401 and self.auth.renewable and not renewal:
                self.auth.forget()
                continue
            if response.is_error:
                raise self.errors.from_response(response)
            return response
        raise AssertionError("unreachable: the renewed attempt returns or raises")
