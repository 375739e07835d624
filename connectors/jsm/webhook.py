"""Jira's signed admin webhooks: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.

The secret is the one set when the webhook was registered; any configured secret verifies
(rotation). The comparison is constant-time and made on the raw body, before it is parsed.
Each delivery carries ``X-Atlassian-Webhook-Identifier``, unchanged across Jira's retries:
Warden records it, so a delivery seen before changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"


class HubSignatureError(Exception):
    """The signature or the delivery id is missing, malformed or does not match."""


def hub_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body`` signed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> str:
    """The delivery's identifier when ``body`` is signed with one of ``secrets``."""
    signature = headers.get(SIGNATURE_HEADER, "").strip()
    identifier = headers.get(IDENTIFIER_HEADER, "").strip()
    if not signature or not identifier:
        raise HubSignatureError("missing X-Hub-Signature or delivery identifier")
    method, _, digest = signature.partition("=")
    if method != "sha256" or not digest:
        raise HubSignatureError("X-Hub-Signature is not method=sha256")
    for secret in secrets:
        if hmac.compare_digest(hub_signature(secret, body), f"sha256={digest.lower()}"):
            return identifier
    raise HubSignatureError("no matching signature")
