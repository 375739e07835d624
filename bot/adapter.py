"""Warden's door to Teams: ``/api/messages`` in, cards out; the one botbuilder boundary.

Inbound, a turn is authenticated once (``bot.auth``: a bare 401 for every invalid bearer),
checked against the tenant allowlist, read from its JSON (``bot.activities``) and handed to
the ``TurnHandler`` as Warden's own typed objects; the cards it returns are sent as replies,
or as the invoke response of a card action. Outbound, every post, reply and update goes to the
Bot Connector REST API over one pooled HTTP client (``bot.outbound``). botbuilder provides the
bot's credentials (MSAL) for the Connector's token — nothing else in Warden imports it, and
this module imports it only when the first token is needed (a bot without an app id, as in
sandbox mode, never loads it).
Why turns bypass botbuilder's CloudAdapter: ``docs/adr/0006-turns-without-cloudadapter.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from aiohttp import web

from bot import activities
from bot.activities import Activity
from bot.auth import BotAuthError, BotTokenValidator, unauthorized
from bot.outbound import ConnectorRest
from bot.receipts import ActivityReceipts, repeated_answer
from bot.types import Card, TurnHandler, User
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.logs import mark_sensitive
from core.metrics import Metrics
from core.models import ConversationRef
from core.pacing import Pacer
from core.settings import Settings

log = logging.getLogger(__name__)

TOKEN_REUSE_SECONDS = 300.0


class _BotConfig:
    """The attribute bag botbuilder's credential factory reads the bot's identity from."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = settings.microsoft_app_password.get_secret_value()
        self.APP_TYPE = settings.microsoft_app_type.value
        self.APP_TENANTID = settings.microsoft_app_tenant_id


class TeamsAdapter:
    """Serves ``/api/messages`` and posts, replies and updates cards."""

    def __init__(
        self,
        settings: Settings,
        handler: TurnHandler,
        breakers: Breakers | None = None,
        *,
        validator: BotTokenValidator | None = None,
        metrics: Metrics | None = None,
        pacer: Pacer | None = None,
        receipts: ActivityReceipts | None = None,
    ) -> None:
        if settings.microsoft_app_id and validator is None:
            raise ValueError("MICROSOFT_APP_ID is set: /api/messages needs a BotTokenValidator")
        self._handler = handler
        self._validator = validator
        self._receipts = receipts
        self._app_id = settings.microsoft_app_id
        self._allowed_tenants = frozenset(t.lower() for t in settings.allowed_tenant_ids)
        self._bot_config = _BotConfig(settings)
        self._credentials: Any = None  # botbuilder's credentials, made on the first token
        self._token: tuple[str | None, float] = (None, 0.0)
        self._rest = ConnectorRest(
            self._connector_token, breakers or Breakers(), metrics, pacer=pacer
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Process one POST to ``/api/messages``.

        401 for any invalid bearer (checked before anything else, so callers cannot probe
        tenants), 403 for a tenant outside the allowlist, 415/400 for a body that is not a
        JSON activity, 201 for a handled activity, 200 with the card for a card action (and
        with the answer of a typeahead search, a message extension action or a link query),
        200 without acting for an activity delivered before (``bot.receipts``), 501 for an
        invoke Warden does not handle, 502 when a reply could not be delivered.
        """
        if self._validator is not None:
            try:
                await self._validator.authenticate(request)
            except BotAuthError as exc:
                log.info("refused /api/messages bearer: %s", exc.reason.value)
                return unauthorized()
        if "json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        try:
            activity = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(activity, dict) or not activity.get("type"):
            return web.Response(status=400)
        if self._allowed_tenants and not self._tenant_allowed(activity):
            return web.Response(status=403)
        text = activity.get("text") if isinstance(activity.get("text"), str) else None
        mark_sensitive(text, activities.message_text(text), activities.user_of(activity).name)
        repeated, key = await self._receipt(activity)
        if repeated:
            return repeated_answer(activity)
        try:
            return await self._dispatch(activity)
        except DeliveryError as exc:
            log.warning("reply not delivered: %s", exc)
            await self._forget(key)
            return web.Response(status=502)
        except BaseException:
            await self._forget(key)
            raise

    async def _receipt(self, activity: Activity) -> tuple[bool, str | None]:
        """Whether ``activity`` was delivered (and acted on) before, and its receipt key."""
        key = self._receipts.key(activity) if self._receipts is not None else None
        if self._receipts is None or key is None or await self._receipts.first(key, activity):
            return False, key
        log.info("repeated %s activity not acted on again", activity["type"])
        return True, key

    async def _forget(self, key: str | None) -> None:
        """Drop the receipt of an activity whose handling failed (its retry must act)."""
        if key is not None and self._receipts is not None:
            await self._receipts.forget(key)

    async def _dispatch(self, activity: Activity) -> web.StreamResponse:
        kind = activity["type"]
        if kind == "invoke":
            return await self._invoke(activity)
        cards: list[Card] = []
        if kind == "message":
            cards = await self._handler.on_message(activities.message(activity))
        elif kind in ("conversationUpdate", "installationUpdate"):
            change = activities.membership(activity)
            if change is not None:
                cards = await self._handler.on_membership(change)
        for card in cards:
            await self._reply(activity, card)
        return web.Response(status=201)

    async def _invoke(self, activity: Activity) -> web.StreamResponse:
        """Answer an invoke by its name; one Warden does not handle gets 501."""
        name = activity.get("name")
        handler = self._handler
        body: dict[str, Any]
        if name == "adaptiveCard/action":
            card = await handler.on_card_action(activities.card_action(activity))
            body = activities.invoke_card_response(card)
        elif name == "application/search":
            answer = await handler.on_search(activities.search_query(activity))
            body = activities.search_response(answer)
            return web.json_response(body, status=int(body["statusCode"]))
        elif name in ("composeExtension/fetchTask", "composeExtension/submitAction"):
            fetch = name == "composeExtension/fetchTask"
            act = handler.on_extension_fetch if fetch else handler.on_extension_submit
            body = activities.task_response(await act(activities.extension_action(activity)))
        elif name == "composeExtension/queryLink":
            preview = await handler.on_link_query(activities.link_query(activity))
            body = activities.unfurl_response(preview)
        else:
            return web.Response(status=501)
        return web.json_response(body)

    async def _reply(self, inbound: Activity, card: Card) -> None:
        conversation = inbound.get("conversation") or {}
        await self._rest.reply(
            str(inbound.get("serviceUrl", "")),
            str(conversation.get("id", "")),
            str(inbound.get("id", "")),
            activities.card_reply(inbound, card),
        )

    def _tenant_allowed(self, activity: Activity) -> bool:
        tenant = activities.tenant_of(activity)
        if tenant is not None and tenant.lower() in self._allowed_tenants:
            return True
        digest = hashlib.sha256(str(tenant).encode()).hexdigest()[:12]
        log.warning("activity refused: tenant %s is not allowed", digest)
        return False

    async def close(self) -> None:
        """Close the connector's pooled connections."""
        await self._rest.close()

    async def team_group_id(self, ref: ConversationRef) -> str | None:
        """The Entra ID group id of the team owning ``ref``'s channel (Graph's team id)."""
        if not ref.team_id:
            return None
        return await self._rest.team_group_id(ref.service_url, ref.team_id)

    async def member(self, ref: ConversationRef, member_id: str) -> User | None:
        """A member of ``ref``'s conversation with their Entra object id, as Teams knows them
        (a mention names a person by their Teams id only); None when not a member."""
        found = await self._rest.member(ref.service_url, ref.conversation_id, member_id)
        if found is None:
            return None
        object_id = found.get("aadObjectId") or found.get("objectId")
        return User(
            id=str(found.get("id") or member_id),
            name=found.get("name"),
            aad_object_id=str(object_id) if object_id else None,
        )

    async def post_card(self, ref: ConversationRef, card: Card) -> str:
        """Post ``card`` as a new message in the conversation; returns its activity id."""
        activity = activities.card_message(ref, card)
        return await self._rest.send(ref.service_url, ref.conversation_id, activity)

    async def update_card(self, ref: ConversationRef, activity_id: str, card: Card) -> None:
        """Replace the card at ``activity_id`` with ``card`` (same message, new content)."""
        activity: dict[str, Any] = {**activities.card_message(ref, card), "id": activity_id}
        await self._rest.update(ref.service_url, ref.conversation_id, activity_id, activity)

    async def _connector_token(self) -> str | None:
        """A bearer for the Bot Connector from botbuilder's credentials (none in sandbox mode).

        MSAL caches the token and renews it before expiry; its call is synchronous, so it
        runs on a worker thread, and the answer is reused here for five minutes.
        """
        if not self._app_id:
            return None
        cached, until = self._token
        if cached and time.monotonic() < until:
            return cached
        credentials = await self._bot_credentials()
        try:
            token = str(await asyncio.to_thread(credentials.get_access_token))
        except Exception as exc:
            raise DeliveryError(
                f"no Bot Connector token: {type(exc).__name__}",
                outcome=Outcome.RETRY,
                attempted=False,
            ) from exc
        self._token = (token, time.monotonic() + TOKEN_REUSE_SECONDS)
        return token

    async def _bot_credentials(self) -> Any:
        """botbuilder's app credentials for the Connector (MSAL inside), made once."""
        if self._credentials is None:
            from botbuilder.integration.aiohttp import (
                ConfigurationServiceClientCredentialFactory,
            )
            from botframework.connector.auth import AuthenticationConstants as Constants

            config = self._bot_config
            login = Constants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + (
                config.APP_TENANTID or Constants.DEFAULT_CHANNEL_AUTH_TENANT
            )
            factory = ConfigurationServiceClientCredentialFactory(config)
            self._credentials = await factory.create_credentials(
                self._app_id, Constants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE, login, True
            )
        return self._credentials
