"""Unit tests of the ARM client base and error family: what the contract tests cannot reach.

The contract tests drive every ARM client against the sandbox; these cover the base's
branches no sandbox answer takes (an empty 2xx body, a credential that fails, a next link
without its api-version) and the per-connector outcome of a refused credential.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from connectors.arm_client import ArmClient
from connectors.arm_deployments.errors import ERRORS as DEPLOYMENTS
from connectors.arm_deployments.errors import (
    DeploymentsError,
    DeploymentsRefused,
    DeploymentsUnavailable,
)
from connectors.arm_errors import ArmErrorKinds, ArmServiceError
from connectors.sentinel.errors import ERRORS as SENTINEL
from connectors.sentinel.errors import (
    IncidentConflict,
    SentinelError,
    SentinelRefused,
    SentinelUnavailable,
)
from core.errors import Outcome


class _Credential:
    """Hands out numbered tokens and counts how many it gave."""

    def __init__(self, error: Exception | None = None) -> None:
        """Fail every request with ``error`` when given."""
        self.given = 0
        self.error = error

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A new token each time (or the error)."""
        if self.error is not None:
            raise self.error
        self.given += 1
        return AccessToken(f"t{self.given}", int(time.time()) + 3600)


class _SentinelProbe(ArmClient[SentinelError]):
    """The base with Sentinel's errors (an empty answer is None)."""

    api_version = "2025-12-01"
    errors = SENTINEL


class _DeploymentsProbe(ArmClient[DeploymentsError]):
    """The base with the deployments' errors (an empty answer is not JSON)."""

    api_version = "2024-03-01"
    errors = DEPLOYMENTS
    empty_answer_ok = False


def _http(answer: Any) -> httpx.AsyncClient:
    """An httpx client whose every request ``answer`` answers."""
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("kinds", "refused", "outcome"),
    [(SENTINEL, SentinelRefused, Outcome.RETRY), (DEPLOYMENTS, DeploymentsRefused, Outcome.FAIL)],
)
def test_refused_credential_outcome_is_the_connectors(
    kinds: ArmErrorKinds[Any], refused: type[ArmServiceError], outcome: Outcome
) -> None:
    """Sentinel retries a refused credential later; the deployments reader gives up."""
    error = kinds.from_credential(ClientAuthenticationError(message="bad secret"))
    assert isinstance(error, refused) and error.outcome is outcome
    assert error.code == "CredentialRefused" and "no ARM token: bad secret" in str(error)
    down = kinds.from_credential(ServiceRequestError(message="no route"))
    assert isinstance(down, kinds.unavailable) and down.outcome is Outcome.RETRY
    assert down.code == "CredentialUnavailable"


def test_status_table_then_5xx_unavailable_else_refused() -> None:
    """A status the family names wins; other 5xx are unavailable, other 4xx refused."""
    assert isinstance(SENTINEL.from_response(httpx.Response(412)), IncidentConflict)
    assert isinstance(SENTINEL.from_response(httpx.Response(503)), SentinelUnavailable)
    refused = SENTINEL.from_response(httpx.Response(400, json={"error": {"code": "Bad"}}))
    assert isinstance(refused, SentinelRefused) and refused.code == "Bad"


async def test_empty_answer_none_or_not_json_as_the_client_says() -> None:
    """An empty 2xx body is None for one client and an unreadable answer for another."""
    async with _http(lambda request: httpx.Response(204)) as http:
        sentinel = _SentinelProbe(http, _Credential(), base_url="https://arm.test")  # type: ignore[arg-type]
        assert await sentinel._call("GET", "https://arm.test/x") is None
        deployments = _DeploymentsProbe(http, _Credential(), base_url="https://arm.test")  # type: ignore[arg-type]
        with pytest.raises(DeploymentsUnavailable, match="GET /x: not JSON") as caught:
            await deployments._call("GET", "https://arm.test/x")
    assert caught.value.code == "InvalidResponse"


async def test_credential_failure_is_the_connectors_error_before_any_request() -> None:
    """A credential that cannot reach its endpoint raises the family's error; nothing is sent."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    credential = _Credential(ServiceRequestError(message="no route"))
    async with _http(answer) as http:
        client = _SentinelProbe(http, credential, base_url="https://arm.test")  # type: ignore[arg-type]
        with pytest.raises(SentinelUnavailable, match="no ARM token"):
            await client._call("GET", "https://arm.test/x")
    assert sent == []


async def test_pages_add_the_api_version_to_a_bare_next_link_and_forget_a_refused_token() -> None:
    """A next link without api-version gets the client's; a 401 fetches a new token next."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"value": [1], "nextLink": "https://arm.test/p2"})
        if len(seen) == 2:
            return httpx.Response(200, json={"value": [2]})
        return httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})

    credential = _Credential()
    async with _http(answer) as http:
        client = _SentinelProbe(http, credential, base_url="https://arm.test/")  # type: ignore[arg-type]
        pages = [page async for page in client._pages("GET", "https://arm.test/p1", client._api)]
        with pytest.raises(SentinelRefused):
            await client._call("GET", "https://arm.test/p1")
        await client._tokens.bearer()
    assert pages == [[1], [2]]
    assert seen[1].url.params["api-version"] == "2025-12-01"
    assert credential.given == 2


def test_base_url_must_be_https_and_named_in_the_refusal() -> None:
    """A bearer token never travels in clear; the refusal names the URL given."""
    with pytest.raises(ValueError, match=r"'http://arm\.test'"):
        _SentinelProbe(httpx.AsyncClient(), _Credential(), base_url="http://arm.test")  # type: ignore[arg-type]
