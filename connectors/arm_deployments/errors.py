"""ARM's error envelope for deployments, turned into Warden's typed errors.

The deployments API answers a failure with ARM's ``CloudError`` (``{"error": {"code",
"message"}}``): 404 ``DeploymentNotFound`` or ``ResourceGroupNotFound``, 429 with
``Retry-After`` when the subscription's read budget is spent, 5xx when ARM is down.
"""

from __future__ import annotations

from connectors.arm_errors import ArmErrorKinds, ArmServiceError
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


ERRORS = ArmErrorKinds(
    DeploymentsError,
    refused=DeploymentsRefused,
    unavailable=DeploymentsUnavailable,
    by_status={404: DeploymentNotFound, 429: DeploymentsThrottled},
    credential_refused=Outcome.FAIL,
)
"""404 → ``DeploymentNotFound``; 429 → ``DeploymentsThrottled``; 5xx →
``DeploymentsUnavailable``; any other → ``DeploymentsRefused``. A credential the token
endpoint refused fails; one that could not reach it is retried."""
