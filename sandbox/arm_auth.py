"""Bearer-token checks of the ARM sandbox, answered as ARM and as Graph answer them.

A token passes only if this sandbox's token endpoint signed it, for this tenant, for an
audience of the service called, and it has not expired (by the sandbox's clock).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from sandbox.arm_login import GRAPH_AUDIENCES
from sandbox.arm_records import ArmError, GraphError
from sandbox.arm_rules import (
    ARM_AUDIENCES,
    audience_message,
    auth_error,
    expired_message,
    tenant_message,
)
from sandbox.arm_tokens import TokenProblem, bearer_token

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

_INVALID = "The access token is invalid."


def authenticate_arm(sandbox: ArmSandbox, header: str | None) -> dict[str, Any]:
    """Return the verified claims of an ARM call's token, or raise ARM's 401."""
    authority, tenant = sandbox.authority, sandbox.tenant_id
    if not header or not header.strip():
        raise auth_error(
            authority,
            tenant,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )
    token = bearer_token(header)
    if token is None:
        raise auth_error(
            authority,
            tenant,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            "The authentication failed because of invalid 'Authorization' header.",
        )
    try:
        return sandbox.issuer.verify(token, ARM_AUDIENCES)
    except TokenProblem as problem:
        raise _arm_refusal(sandbox, problem) from None


def _arm_refusal(sandbox: ArmSandbox, problem: TokenProblem) -> ArmError:
    """Return ARM's 401 for a token that failed verification."""
    authority, tenant, claims = sandbox.authority, sandbox.tenant_id, problem.claims
    if problem.kind == "expired":
        message = expired_message(_instant(claims.get("exp")), _instant(sandbox.clock()))
        return auth_error(authority, tenant, "ExpiredAuthenticationToken", message, message)
    if problem.kind == "audience":
        message = audience_message(claims.get("aud"))
        return auth_error(authority, tenant, "InvalidAuthenticationTokenAudience", message, message)
    if problem.kind == "issuer":
        message = tenant_message(claims.get("iss"), tenant, authority)
        return auth_error(authority, tenant, "InvalidAuthenticationTokenTenant", message, message)
    return auth_error(authority, tenant, "InvalidAuthenticationToken", _INVALID, _INVALID)


def _instant(seconds: object) -> datetime.datetime:
    """Return epoch seconds as an aware UTC datetime (the epoch for non-numbers)."""
    value = float(seconds) if isinstance(seconds, (int, float)) else 0.0
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)


_GRAPH_MESSAGES = {
    "expired": "Lifetime validation failed, the token is expired.",
    "audience": "Access token validation failure. Invalid audience.",
    "issuer": "Access token validation failure. Invalid issuer.",
}


def authenticate_graph(sandbox: ArmSandbox, header: str | None) -> dict[str, Any]:
    """Return the verified claims of a Graph call's token, or raise Graph's 401."""
    challenge = {
        "WWW-Authenticate": (
            f'Bearer realm="", authorization_uri="{sandbox.authority}/common/oauth2/authorize", '
            'client_id="00000003-0000-0000-c000-000000000000"'
        )
    }
    token = bearer_token(header)
    if token is None:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
    try:
        return sandbox.issuer.verify(token, GRAPH_AUDIENCES)
    except TokenProblem as problem:
        message = _GRAPH_MESSAGES.get(problem.kind, "Access token validation failure.")
        raise GraphError(401, "InvalidAuthenticationToken", message, challenge) from None
