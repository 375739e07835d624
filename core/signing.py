"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

Verification accepts a signature made with any of the configured secrets (so a secret can be
rotated without downtime), compares in constant time (the ``standardwebhooks`` package) and
refuses timestamps more than five minutes away from now.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class SignatureError(Exception):
    """The webhook's signature headers are missing, malformed, expired or do not match."""


class WebhookVerifier:
    """Verifies Standard Webhooks signatures against several secrets."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self._hooks = [Webhook(secret) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The ``webhook-id`` of a correctly signed, current request; ``SignatureError`` else."""
        wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
        subset = {name: headers.get(name, "") for name in wanted}
        if not all(subset.values()):
            raise SignatureError("missing signature headers")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        for hook in self._hooks:
            try:
                hook.verify(text, subset, json_parse=False)
            except WebhookVerificationError as exc:
                if "timestamp" in str(exc).lower() or "headers" in str(exc).lower():
                    raise SignatureError(str(exc)) from None
                continue
            except (ValueError, TypeError):
                raise SignatureError("malformed signature header") from None
            return subset["webhook-id"]
        raise SignatureError("no matching signature")


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
