"""The refusals of ARM and Sentinel, with the codes and messages the real services use.

Where each text comes from (public reports of real answers, or the Azure guidelines):

* Stale incident ``etag``: 409 ``Conflict`` "Newer version of resource '<name>' exists.
  Data was not saved" (Sentinel answers seen in Azure/Azure-Sentinel issues #883 and #909
  and azsec/azure-sentinel-tools#4; Sentinel does not use 412 here).
* Closing: "classification 'BenignPositive' must have classificationReason." as
  ``BadRequest`` 400 (seen in demisto/content#34306); a missing classification is refused
  the same way (the portal and API require one to close).
* ``api-version``: missing -> 400 ``MissingApiVersionParameter`` "The api-version query
  parameter (?api-version=) is required for all requests." (Azure REST API guidelines);
  unknown -> 400 ``InvalidApiVersionParameter`` "The api-version '<v>' is invalid. The
  supported versions are '<list>'." (ARM answers quoted in many SDK issues).
* Authentication (401 with ``WWW-Authenticate: Bearer authorization_uri=..., error=
  "invalid_token", error_description=...``): ``AuthenticationFailed`` "Authentication
  failed. The 'Authorization' header is missing." / "... is provided in an invalid format.";
  ``InvalidAuthenticationToken`` "The access token is invalid."; ``ExpiredAuthenticationToken``;
  ``InvalidAuthenticationTokenAudience``; ``InvalidAuthenticationTokenTenant``.
* Scope: ``InvalidSubscriptionId``, ``SubscriptionNotFound``, ``ResourceGroupNotFound``,
  ``ResourceNotFound`` with ARM's messages.
"""

from __future__ import annotations

import datetime
from typing import Any

from sandbox.arm_records import ArmError
from sandbox.arm_schema import API_VERSION
from sandbox.arm_seed import Scope

ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)
"""Token audiences ARM accepts."""

# Classifications that Sentinel refuses without a classificationReason.
_NEEDS_REASON = ("TruePositive", "BenignPositive")


def not_found(name: str) -> ArmError:
    """Return the 404 for an incident or comment that does not exist."""
    return ArmError(404, "NotFound", f"Resource '{name}' does not exist")


def stale_etag(name: str) -> ArmError:
    """Return Sentinel's answer to a PUT whose etag is not the stored one."""
    return ArmError(
        409, "Conflict", f"Newer version of resource '{name}' exists. Data was not saved"
    )


def closing_error(properties: dict[str, Any]) -> str | None:
    """Return why Sentinel refuses these incident properties, or None.

    Closing needs a ``classification``; TruePositive and BenignPositive also need a
    ``classificationReason``.
    """
    if properties.get("status") != "Closed":
        return None
    classification = properties.get("classification")
    if not classification:
        return "classification is required when status is 'Closed'."
    if classification in _NEEDS_REASON and not properties.get("classificationReason"):
        return f"classification '{classification}' must have classificationReason."
    return None


def api_version_error(value: str | None, supported: str = API_VERSION) -> ArmError | None:
    """Return the 400 for a missing or unsupported ``api-version``, or None if it is served.

    ``supported`` is the version of the addressed API (Sentinel's unless told otherwise).
    """
    if value is None or value == "":
        message = "The api-version query parameter (?api-version=) is required for all requests."
        return ArmError(400, "MissingApiVersionParameter", message)
    if value != supported:
        message = f"The api-version '{value}' is invalid. The supported versions are '{supported}'."
        return ArmError(400, "InvalidApiVersionParameter", message)
    return None


def workspace_errors(subscription: str, group: str, name: str, known: list[Scope]) -> ArmError:
    """Return ARM's 400/404 for a workspace path the sandbox does not serve."""
    if not _is_guid(subscription):
        message = f"The provided subscription identifier '{subscription}' is malformed or invalid."
        return ArmError(400, "InvalidSubscriptionId", message)
    if not any(s.subscription.lower() == subscription.lower() for s in known):
        return ArmError(
            404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
        )
    if not any(
        s.subscription.lower() == subscription.lower() and s.resource_group.lower() == group.lower()
        for s in known
    ):
        return ArmError(
            404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found."
        )
    message = (
        f"The Resource 'Microsoft.OperationalInsights/workspaces/{name}' under resource group "
        f"'{group}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix"
    )
    return ArmError(404, "ResourceNotFound", message)


def _is_guid(value: str) -> bool:
    """Tell whether a string is a GUID in the 8-4-4-4-12 form."""
    parts = value.split("-")
    lengths = [len(part) for part in parts]
    hexdigits = all(c in "0123456789abcdefABCDEF" for c in value.replace("-", ""))
    return lengths == [8, 4, 4, 4, 12] and hexdigits


def auth_error(authority: str, tenant: str, code: str, message: str, why: str) -> ArmError:
    """Return a 401 with ARM's ``WWW-Authenticate`` challenge pointing at the sandbox authority."""
    challenge = (
        f'Bearer authorization_uri="{authority}/{tenant}", error="invalid_token", '
        f'error_description="{why}"'
    )
    return ArmError(401, code, message, {"WWW-Authenticate": challenge})


def expired_message(expires: datetime.datetime, now: datetime.datetime) -> str:
    """Return ARM's ``ExpiredAuthenticationToken`` message."""
    fmt = "%m/%d/%Y %I:%M:%S %p"
    return (
        f"The access token expiry UTC time '{expires.strftime(fmt)}' is earlier than current "
        f"UTC time '{now.strftime(fmt)}'."
    )


def audience_message(audience: object) -> str:
    """Return ARM's ``InvalidAuthenticationTokenAudience`` message."""
    allowed = ",".join(f"'{aud}'" for aud in ARM_AUDIENCES)
    return (
        f"The access token has been obtained for wrong audience or resource '{audience}'. "
        f"It should exactly match with one of the allowed audiences {allowed}."
    )


def tenant_message(issuer: object, tenant: str, authority: str) -> str:
    """Return ARM's ``InvalidAuthenticationTokenTenant`` message."""
    return (
        f"The access token is from the wrong issuer '{issuer}'. It must match the tenant "
        f"'https://sts.windows.net/{tenant}/' associated with this subscription. Please use "
        f"the authority (URL) '{authority}/{tenant}' to get the token."
    )
