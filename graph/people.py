"""People in the directory and their personal chat with Warden, through Microsoft Graph.

``user_by_upn`` turns a user principal name into the person's Entra object id and name
(``GET /users/{upn}?$select=id,displayName,userPrincipalName``), so an evidence owner typed
as ``alice@contoso.com`` is stored as the id her card clicks carry.

``personal_chat`` gives the id of the one-on-one chat between a user and Warden's bot, so a
card can be posted there proactively. Graph creates that chat when the app is installed in
the user's personal scope: find the app in the organisation's catalog (by its external id,
the bot's Microsoft app id; cached), install it for the user (409 Conflict: it already is),
find the installation and ask for its chat. When the tenant refuses (the app is not in the
catalog, user installs are blocked, the permission is missing) ``PersonalChatRefused`` says
so and the caller posts in a channel instead; a failure that retrying can fix is a
``DeliveryError`` the outbox retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.app_catalogs.teams_apps.teams_apps_request_builder import (
    TeamsAppsRequestBuilder,
)
from msgraph.generated.models.user_scope_teams_app_installation import (
    UserScopeTeamsAppInstallation,
)
from msgraph.generated.users.item.teamwork.installed_apps.installed_apps_request_builder import (
    InstalledAppsRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from core.errors import DeliveryError, Outcome

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 429})
"""Client errors that retrying can fix; any other 4xx is the tenant saying no."""

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
"""The base of the ``teamsApp@odata.bind`` reference Graph expects."""


@dataclass(frozen=True)
class Person:
    """A directory user: Entra object id (lower case), display name, user principal name."""

    id: str
    name: str
    upn: str


class PersonalChatRefused(DeliveryError):
    """The tenant refused Warden a personal chat with the user (retrying will not help)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, outcome=Outcome.FAIL, status=status)


class People:
    """Directory look-ups and personal chats, through msgraph-sdk.

    ``bind_base``: the Graph base named in ``teamsApp@odata.bind`` (the real service wants
    ``https://graph.microsoft.com/v1.0``; a national cloud or the sandbox its own).
    ``catalog_ttl``: how long an app-catalog answer (found or not) is kept, in seconds.
    """

    def __init__(
        self,
        graph: GraphServiceClient,
        *,
        bind_base: str = GRAPH_V1,
        catalog_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._graph = graph
        self._bind_base = bind_base.rstrip("/")
        self._ttl = catalog_ttl
        self._clock = clock
        self._catalog: dict[str, tuple[str | None, float]] = {}

    async def user_by_upn(self, upn: str) -> Person | None:
        """The user whose principal name is ``upn``, or None when the directory has none
        (Graph takes an object id in its place too)."""
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "displayName", "userPrincipalName"]
        )
        try:
            found = await self._graph.users.by_user_id(upn).get(
                RequestConfiguration(query_parameters=query)
            )
        except APIError as exc:
            if exc.response_status_code == 404:
                return None
            log.warning("user look-up failed: Graph answered %s", exc.response_status_code)
            raise _unavailable("user look-up", exc) from None
        if found is None or not found.id:
            return None
        principal = found.user_principal_name or upn
        return Person(found.id.lower(), found.display_name or principal, principal)

    async def personal_chat(self, user_id: str, app_external_id: str) -> str:
        """The id of the chat between ``user_id`` and the app (installed for them if need be).

        Idempotent: an app already installed for the user (409) is fine, so a retried call
        installs nothing twice. ``PersonalChatRefused`` when the tenant says no.
        """
        catalog_id = await self._catalog_id(app_external_id)
        user = self._graph.users.by_user_id(user_id)
        body = UserScopeTeamsAppInstallation(
            additional_data={
                "teamsApp@odata.bind": f"{self._bind_base}/appCatalogs/teamsApps/{catalog_id}"
            }
        )
        try:
            await user.teamwork.installed_apps.post(body)
            log.info("Warden installed in a user's personal scope")
        except APIError as exc:
            if exc.response_status_code != 409:
                raise _refused_or_retry("installing the app for the user", exc) from None
        installation = await self._installation(user_id, app_external_id)
        try:
            chat = await user.teamwork.installed_apps.by_user_scope_teams_app_installation_id(
                installation
            ).chat.get()
        except APIError as exc:
            raise _refused_or_retry("reading the personal chat", exc) from None
        if chat is None or not chat.id:
            raise PersonalChatRefused("Graph gave no chat for the installation")
        return chat.id

    async def _catalog_id(self, external_id: str) -> str:
        """The app's id in the organisation's catalog (kept ``catalog_ttl`` seconds)."""
        known = self._catalog.get(external_id)
        if known is None or known[1] <= self._clock():
            query = TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetQueryParameters(
                filter=f"externalId eq '{_quoted(external_id)}'"
            )
            try:
                found = await self._graph.app_catalogs.teams_apps.get(
                    RequestConfiguration(query_parameters=query)
                )
            except APIError as exc:
                raise _refused_or_retry("reading the app catalog", exc) from None
            apps = [app.id for app in (found.value if found and found.value else []) if app.id]
            known = (apps[0] if apps else None, self._clock() + self._ttl)
            self._catalog[external_id] = known
        if known[0] is None:
            raise PersonalChatRefused("Warden's app is not in the organisation's app catalog")
        return known[0]

    async def _installation(self, user_id: str, external_id: str) -> str:
        """The id of the app's installation in the user's personal scope."""
        query = InstalledAppsRequestBuilder.InstalledAppsRequestBuilderGetQueryParameters(
            expand=["teamsApp"], filter=f"teamsApp/externalId eq '{_quoted(external_id)}'"
        )
        installed = self._graph.users.by_user_id(user_id).teamwork.installed_apps
        try:
            found = await installed.get(RequestConfiguration(query_parameters=query))
        except APIError as exc:
            raise _refused_or_retry("listing the user's apps", exc) from None
        ids = [item.id for item in (found.value if found and found.value else []) if item.id]
        if not ids:
            raise DeliveryError("the installation is not listed yet", outcome=Outcome.RETRY)
        return ids[0]


def _quoted(value: str) -> str:
    """``value`` inside an OData string literal (a quote doubled)."""
    return value.replace("'", "''")


def _refused_or_retry(doing: str, exc: APIError) -> DeliveryError:
    """A refusal for the statuses that retrying cannot change; otherwise a retry."""
    status = exc.response_status_code
    if status is not None and 400 <= status < 500 and status not in RETRIED:
        log.info("personal chat refused while %s: Graph answered %s", doing, status)
        return PersonalChatRefused(f"{doing}: Graph answered {status}", status=status)
    return _unavailable(doing, exc)


def _unavailable(doing: str, exc: APIError) -> DeliveryError:
    """A failure to try again later (throttled, or the service failing)."""
    status = exc.response_status_code
    outcome = Outcome.RATE_LIMITED if status == 429 else Outcome.RETRY
    return DeliveryError(f"{doing}: Graph answered {status}", outcome=outcome, status=status)
