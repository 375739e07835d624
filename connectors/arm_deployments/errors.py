"""ARM's error envelope for deployments, turned into Warden's typed errors.

The deployments API answers a failure with ARM's ``CloudError`` (``{"error": {"code",
"message"}}``): 404 ``DeploymentNotFound`` or ``ResourceGroupNotFound``, 429 with
``Retry-After`` when the subscription's read budget is spent, 5xx when ARM is down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from connectors.arm_errors import ArmServiceError, from_response
from core.errors import Outcome


class DeploymentsError(ArmServiceError):
    """A call to ARM deployments failed; ``code`` and ``message`` are ARM's words."""

    service = "ARM deployments"
    user_message = "Azure Resource Manager could not list the deployments."


class DeploymentNotFound(DeploymentsError):
    """404: the deployment (or its resource group) does not exist."""

    user_message = "Azure has no such deployment."


class DeploymentsThrottled(DeploymentsError):
    """429: ARM asks to slow down; ``retry_after`` is its delay in seconds, if named."""

    user_message = "Azure Resource Manager is throttling Warden; it will try again shortly."


class DeploymentsUnavailable(DeploymentsError):
    """5xx after the retries allowed, or no answer at all (timeouts, resets, open breaker)."""

    user_message = "Azure Resource Manager cannot be reached right now."


class DeploymentsRefused(DeploymentsError):
    """401/403 or another 4xx: ARM refused the request and said why."""

    user_message = "Warden may not read deployments there; ask an administrator."


def error_from_response(response: httpx.Response) -> DeploymentsError:
    """The typed error of an answer with a failure status (the body must have been read)."""
    status = response.status_code
    kind: type[DeploymentsError] = DeploymentsRefused
    if status == 404:
        kind = DeploymentNotFound
    elif status == 429:
        kind = DeploymentsThrottled
    elif status >= 500:
        kind = DeploymentsUnavailable
    return from_response(kind, response)


if TYPE_CHECKING:  # azure-core comes with the first credential (ADR 9)
    from azure.core.exceptions import AzureError


def error_from_credential(error: AzureError) -> DeploymentsError:
    """The error for a credential that gave no ARM token."""
    message = f"no ARM token: {error.message}"
    from azure.core.exceptions import ClientAuthenticationError

    if isinstance(error, ClientAuthenticationError):
        return DeploymentsRefused(message, code="CredentialRefused", outcome=Outcome.FAIL)
    return DeploymentsUnavailable(message, code="CredentialUnavailable", outcome=Outcome.RETRY)


def invalid_answer(message: str) -> DeploymentsUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the contract's shape)."""
    return DeploymentsUnavailable(message, code="InvalidResponse", outcome=Outcome.RETRY)
