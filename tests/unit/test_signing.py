"""Standard Webhooks signature verification."""

from __future__ import annotations

import time

import pytest

from core.signing import SignatureError, WebhookVerifier, sign
from tests.support import OTHER_SECRET, SECRET

BODY = b'{"id": "x"}'


def test_verify_valid_signature_returns_webhook_id() -> None:
    """A correctly signed, current request verifies and yields its webhook-id."""
    headers = sign(SECRET, BODY, msg_id="msg_1")
    assert WebhookVerifier([SECRET]).verify(BODY, headers) == "msg_1"


def test_verify_tampered_body_refused() -> None:
    """One changed byte in the body breaks the signature."""
    headers = sign(SECRET, BODY)
    with pytest.raises(SignatureError):
        WebhookVerifier([SECRET]).verify(b'{"id": "y"}', headers)


def test_verify_wrong_secret_refused() -> None:
    """A signature made with a secret Warden does not hold is refused."""
    headers = sign(OTHER_SECRET, BODY)
    with pytest.raises(SignatureError):
        WebhookVerifier([SECRET]).verify(BODY, headers)


def test_verify_old_timestamp_refused() -> None:
    """A timestamp more than five minutes old is refused even with a good signature."""
    headers = sign(SECRET, BODY, timestamp=time.time() - 301)
    with pytest.raises(SignatureError, match="old"):
        WebhookVerifier([SECRET]).verify(BODY, headers)


def test_verify_future_timestamp_refused() -> None:
    """A timestamp more than five minutes ahead is refused."""
    headers = sign(SECRET, BODY, timestamp=time.time() + 301)
    with pytest.raises(SignatureError, match="new"):
        WebhookVerifier([SECRET]).verify(BODY, headers)


def test_verify_rotated_secret_either_accepted() -> None:
    """During rotation, signatures from the old and the new secret both verify."""
    verifier = WebhookVerifier([SECRET, OTHER_SECRET])
    assert verifier.verify(BODY, sign(SECRET, BODY, msg_id="a")) == "a"
    assert verifier.verify(BODY, sign(OTHER_SECRET, BODY, msg_id="b")) == "b"


@pytest.mark.parametrize("bad", ["", "v1", "v1,!!!notbase64", "v2,abc", "garbage"])
def test_verify_malformed_signature_header_refused(bad: str) -> None:
    """Malformed signature headers are refused, never an unexpected exception."""
    headers = sign(SECRET, BODY)
    headers["webhook-signature"] = bad
    with pytest.raises(SignatureError):
        WebhookVerifier([SECRET]).verify(BODY, headers)


def test_verify_missing_headers_refused() -> None:
    """A request without the signature headers is refused."""
    with pytest.raises(SignatureError, match="missing"):
        WebhookVerifier([SECRET]).verify(BODY, {})


def test_verify_several_signatures_one_matching_accepted() -> None:
    """A header listing other schemes' and stale signatures verifies by the one that matches."""
    headers = sign(SECRET, BODY, msg_id="msg_2")
    stale = sign(OTHER_SECRET, BODY)["webhook-signature"]
    headers["webhook-signature"] = f"v1a,abc {stale} {headers['webhook-signature']}"
    assert WebhookVerifier([SECRET]).verify(BODY, headers) == "msg_2"
