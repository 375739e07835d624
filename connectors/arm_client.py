"""The base of Warden's Azure Resource Manager clients (Sentinel, Policy Insights, ...).

Every ARM client talks to one https origin with an ARM bearer token
(``connectors.arm_token``) through the injected resilient ``httpx.AsyncClient``
(``connectors.http.resilient_client``, which retries, honours ``Retry-After``, keeps the
per-host breaker and counts and logs each call), with explicit timeouts and the service's
api-version. It sends a request the same way, turns the same failures into its own typed
errors (``connectors.arm_errors.ArmErrorKinds``) and follows ``nextLink`` pages the same
way, refusing a link to another host (the token would go along) or one seen before (the
pages loop). A subclass names its api-version and its error family, and adds the service's
operations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import httpx

from connectors.arm_errors import ArmErrorKinds, E
from connectors.arm_token import ARM_SCOPE, ArmTokenCache
from connectors.http import DEFAULT_TIMEOUT, IDEMPOTENT_EXTENSION, host_key
from core.errors import DeliveryError
from core.outcomes import classify_transport

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

ARM_ENDPOINT = "https://management.azure.com"
"""Azure Resource Manager in the public cloud."""


class ArmClient(Generic[E]):
    """Calls one ARM service; a subclass sets ``api_version`` and ``errors``.

    The caller owns (and closes) ``http`` and ``credential``. The ARM token is kept until
    5 minutes before it expires, and forgotten when ARM refuses it (401).
    """

    api_version: ClassVar[str]
    """The api-version the service's client speaks unless told another."""

    errors: ArmErrorKinds[E]
    """The service's error family: what a failure becomes."""

    empty_answer_ok: ClassVar[bool] = True
    """Whether a 2xx answer without a body is None (else it is not JSON: an error)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        *,
        base_url: str = ARM_ENDPOINT,
        api_version: str | None = None,
        scope: str = ARM_SCOPE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to ARM at ``base_url`` (https only: it carries a bearer token), in
        ``api_version`` (the class's unless given)."""
        origin = httpx.URL(base_url)
        if origin.scheme != "https" or not origin.host:
            raise ValueError(f"base_url must be an https URL, not {base_url!r}")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._origin = host_key(origin)
        self._api = {"api-version": self.api_version if api_version is None else api_version}
        self._timeout = timeout
        self._tokens = ArmTokenCache(credential, self.errors.from_credential, scope=scope)

    async def _pages(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        *,
        link: str = "nextLink",
        what: str = "the answer",
        idempotent: bool = False,
    ) -> AsyncIterator[list[Any]]:
        """The ``value`` array of each page of a list operation, along ``link``.

        ``params`` go with the first request only: a next link carries its own. ``what``
        names the answer in the error when it has no ``value`` array.
        """
        next_url: str | None = url
        query: dict[str, str] | None = params
        seen: set[str] = set()
        while next_url is not None:
            answer = await self._call(method, next_url, params=query, idempotent=idempotent)
            value = answer.get("value") if isinstance(answer, dict) else None
            if not isinstance(value, list):
                raise self.errors.invalid_answer(f"{what} has no 'value' array")
            yield value
            next_url, query = self._follow(answer.get(link), seen, name=link), None

    def _follow(self, link: object, seen: set[str], *, name: str = "nextLink") -> str | None:
        """The next page's URL as given (with the api-version added when it lacks one);
        refuse another host (the token goes along) or a loop. ``name`` is the link's field."""
        if not isinstance(link, str) or not link:
            return None
        url = httpx.URL(link)
        if host_key(url) != self._origin or link in seen:
            problem = "a loop" if link in seen else f"another host ({url.host})"
            raise self.errors.base(f"{name} points to {problem}", code="InvalidNextLink")
        seen.add(link)
        if "api-version" not in url.params:
            return str(url.copy_merge_params(self._api))
        return link

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """The JSON of a 2xx answer, else the typed error (None ``params``: a nextLink).

        ``idempotent`` lets the transport resend the request (a read, or a PUT by name).
        """
        headers = {
            "Authorization": f"Bearer {await self._tokens.bearer()}",
            "Accept": "application/json",
            "x-ms-client-request-id": str(uuid.uuid4()),
        }
        try:
            response = await self._http.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self._timeout,
                extensions={IDEMPOTENT_EXTENSION: True} if idempotent else None,
            )
        except DeliveryError as exc:
            raise self.errors.unavailable.from_delivery(exc) from exc
        except httpx.HTTPError as exc:
            message = f"{method} {httpx.URL(url).path}: {type(exc).__name__}"
            raise self.errors.unavailable(message, outcome=classify_transport(exc)) from exc
        self._answered(response)
        if response.status_code == 401:
            self._tokens.forget()  # fetch a new one next time
        if response.is_error:
            raise self.errors.from_response(response)
        if self.empty_answer_ok and not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise self.errors.invalid_answer(f"{method} {response.url.path}: not JSON") from None

    def _answered(self, response: httpx.Response) -> None:
        """Note what an answer says beyond its body (nothing here; Resource Graph's quota)."""
