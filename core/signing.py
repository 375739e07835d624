"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

Verification accepts a signature made with any of the configured secrets (so a secret can be
rotated without downtime), compares in constant time and refuses timestamps more than five
minutes away from now. It follows the scheme of the ``standardwebhooks`` package (which signs,
here and in the tests) but does the HMAC itself: it sits on the ingest hot path, and the
package's per-call date arithmetic and copying cost several times the HMAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

TOLERANCE_SECONDS = 300
"""How far a ``webhook-timestamp`` may be from now, either way."""


class SignatureError(Exception):
    """The webhook's signature headers are missing, malformed, expired or do not match."""


class WebhookVerifier:
    """Verifies Standard Webhooks signatures against several secrets."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self._keys = [_secret_bytes(secret) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The ``webhook-id`` of a correctly signed, current request; ``SignatureError`` else."""
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not (msg_id and stamp and signatures):
            raise SignatureError("missing signature headers")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        signed = f"{msg_id}.{_timestamp(stamp)}.".encode() + body
        try:
            passed = [_passed_signature(part) for part in signatures.split(" ")]
        except (ValueError, binascii.Error):
            raise SignatureError("malformed signature header") from None
        for key in self._keys:
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            if any(sig is not None and hmac.compare_digest(expected, sig) for sig in passed):
                return msg_id
        raise SignatureError("no matching signature")


def _secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_``-prefixed (or bare) base64 secret, read as the package reads it."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _timestamp(stamp: str) -> int:
    """The whole seconds of a current ``webhook-timestamp``; ``SignatureError`` otherwise."""
    try:
        seconds = float(stamp)
    except ValueError:
        raise SignatureError("Invalid Signature Headers") from None
    if not math.isfinite(seconds):
        raise SignatureError("Invalid Signature Headers")
    now = time.time()
    if seconds < now - TOLERANCE_SECONDS:
        raise SignatureError("Message timestamp too old")
    if seconds > now + TOLERANCE_SECONDS:
        raise SignatureError("Message timestamp too new")
    return math.floor(seconds)


def _passed_signature(part: str) -> bytes | None:
    """The bytes of one ``v1,<base64>`` signature; ``None`` for another scheme's version."""
    version, signature = part.split(",")
    return base64.b64decode(signature) if version == "v1" else None


def sign(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` signed with ``secret``."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, timezone.utc)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }
