"""The one botbuilder boundary: Teams activities in, Warden's typed turns out, cards back.

Nothing else in Warden imports botbuilder. Inbound, ``TeamsAdapter.handle`` runs botbuilder's
CloudAdapter (authentication, activity parsing) and hands ``bot.types`` objects to the
``TurnHandler``. Outbound, ``post_card`` and ``update_card`` use the adapter's proactive path
and turn the SDK's failures into ``DeliveryError`` with an outcome from the one
classification table (``core.outcomes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
import time
from typing import Any

import httpx
from aiohttp import web
from botbuilder.core import (
    ActivityHandler,
    CardFactory,
    MessageFactory,
    TurnContext,
    serializer_helper,
)
from botbuilder.core.invoke_response import InvokeResponse
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    CallerIdConstants,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
)
from msrest.universal_http.requests import ClientRetryPolicy

from bot.auth import BotAuthError, BotTokenValidator, Claims, unauthorized
from bot.outbound import ConnectorRest
from bot.types import Card, CardAction, Membership, Message, TurnHandler, User
from core.breaker import Breakers
from core.logs import mark_sensitive
from core.metrics import Metrics
from core.models import ConversationKind, ConversationRef
from core.settings import Settings

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<at[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def tune_msrest() -> None:
    """Fix msrest's two costs under botbuilder, once per process (idempotent).

    1. ``ClientRetryPolicy.__init__`` checks 999 status codes against ``safe_codes``, a list
       of ~500 (about 3.6 ms, and botbuilder builds several clients per turn): a frozenset
       makes the same check O(1).
    2. Its urllib3 ``Retry`` retries updates (PUT) on any 5xx with seconds of blocking
       backoff, under Warden's own outbox retries, and a different urllib3 would retry card
       posts too: retries are switched off so that the outbox is the single retry authority
       and every failure reaches it with its status and ``Retry-After``.
    """
    policy_class: Any = ClientRetryPolicy
    if getattr(policy_class, "_warden_tuned", False):
        return
    policy_class.safe_codes = frozenset(policy_class.safe_codes)
    original = policy_class.__init__

    def init(self: Any) -> None:
        original(self)
        policy = self.policy
        policy.total = policy.connect = policy.read = policy.status = 0
        policy.raise_on_status = False
        policy.respect_retry_after_header = False

    policy_class.__init__ = init
    policy_class._warden_tuned = True


class _BotConfig:
    """The attribute bag ConfigurationBotFrameworkAuthentication reads its settings from."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = settings.microsoft_app_password.get_secret_value()
        self.APP_TYPE = settings.microsoft_app_type.value
        self.APP_TENANTID = settings.microsoft_app_tenant_id


def message_text(raw: str | None) -> str:
    """The words a person typed: mentions and markup removed, white space folded."""
    text = _MENTION.sub(" ", raw or "")
    text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


def conversation_ref(activity: Activity) -> ConversationRef:
    """Where an inbound activity came from, as a reference for posting there later."""
    conversation = activity.conversation
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    team = data.get("team") or {}
    channel = data.get("channel") or {}
    tenant = (data.get("tenant") or {}).get("id") or conversation.tenant_id
    kind = {
        "channel": ConversationKind.CHANNEL,
        "groupChat": ConversationKind.GROUP_CHAT,
    }.get(conversation.conversation_type or "", ConversationKind.PERSONAL)
    return ConversationRef(
        conversation_id=conversation.id.split(";messageid=")[0],
        service_url=activity.service_url,
        channel_id=activity.channel_id or "msteams",
        kind=kind,
        tenant_id=tenant,
        bot_id=activity.recipient.id if activity.recipient else "",
        bot_name=(activity.recipient.name or "") if activity.recipient else "",
        name=channel.get("name") or conversation.name,
        team_id=team.get("id"),
        team_name=team.get("name"),
    )


def _user(account: ChannelAccount | None) -> User:
    if account is None:
        return User(id="")
    return User(id=account.id, name=account.name, aad_object_id=account.aad_object_id)


def _card_activity(card: Card) -> Activity:
    return MessageFactory.attachment(CardFactory.adaptive_card(card))


class _Bridge(ActivityHandler):  # type: ignore[misc]
    """Translates botbuilder's turn callbacks into ``TurnHandler`` calls."""

    def __init__(self, handler: TurnHandler) -> None:
        self._handler = handler

    async def on_turn(self, turn_context: TurnContext) -> None:
        """Keep the activity's words and its sender's name out of every log line of the turn."""
        activity = turn_context.activity
        sender = activity.from_property
        mark_sensitive(activity.text, message_text(activity.text), sender.name if sender else None)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        message = Message(
            text=message_text(activity.text),
            user=_user(activity.from_property),
            conversation=conversation_ref(activity),
        )
        for card in await self._handler.on_message(message):
            await turn_context.send_activity(_card_activity(card))

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        added = any(m.id == bot_id for m in activity.members_added or [])
        removed = any(m.id == bot_id for m in activity.members_removed or [])
        if added or removed:
            await self._membership(turn_context, added=added)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._membership(turn_context, added=True)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._membership(turn_context, added=False)

    async def _membership(self, turn_context: TurnContext, *, added: bool) -> None:
        activity = turn_context.activity
        change = Membership(conversation_ref(activity), added, _user(activity.from_property))
        for card in await self._handler.on_membership(change):
            await turn_context.send_activity(_card_activity(card))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return InvokeResponse(status=501)
        value = activity.value if isinstance(activity.value, dict) else {}
        found = value.get("action")
        action: dict[str, Any] = found if isinstance(found, dict) else {}
        data = action.get("data")
        card = await self._handler.on_card_action(
            CardAction(
                verb=str(action.get("verb") or ""),
                user=_user(activity.from_property),
                conversation=conversation_ref(activity),
                data=data if isinstance(data, dict) else {},
                activity_id=activity.reply_to_id,
            )
        )
        body = AdaptiveCardInvokeResponse(status_code=200, type=_CARD_TYPE, value=card)
        return InvokeResponse(status=200, body=body)


class TeamsAdapter:
    """Warden's door to Teams: serves ``/api/messages`` and posts or updates cards."""

    def __init__(
        self,
        settings: Settings,
        handler: TurnHandler,
        breakers: Breakers | None = None,
        *,
        validator: BotTokenValidator | None = None,
        metrics: Metrics | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        tune_msrest()
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        if settings.microsoft_app_id and validator is None:
            raise ValueError("MICROSOFT_APP_ID is set: /api/messages needs a BotTokenValidator")
        self._validator = validator
        config = _BotConfig(settings)
        self._credentials = ConfigurationServiceClientCredentialFactory(config)
        self._login_endpoint = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + (
            settings.microsoft_app_tenant_id or AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
        )
        self._token: tuple[str | None, float] = (None, 0.0)
        self._rest = ConnectorRest(
            self._http, self._connector_token, breakers or Breakers(), metrics
        )
        self._auth = ConfigurationBotFrameworkAuthentication(config)
        self._adapter = CloudAdapter(self._auth)
        self._adapter.on_turn_error = self._on_turn_error
        self._bridge = _Bridge(handler)
        self._app_id = settings.microsoft_app_id
        self._allowed_tenants = frozenset(t.lower() for t in settings.allowed_tenant_ids)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Process one POST to ``/api/messages``.

        With an app id, the bearer is validated once, here (``bot.auth``): every invalid
        token gets a bare 401, never a 500, and botbuilder runs the turn on the validated
        claims. Then activities from tenants outside the allowlist get 403. Without an app
        id (sandbox), botbuilder's anonymous mode serves the Playground.
        """
        claims: Claims | None = None
        if self._validator is not None:
            try:
                claims = await self._validator.authenticate(request)
            except BotAuthError as exc:
                log.info("refused /api/messages bearer: %s", exc.reason.value)
                return unauthorized()
        if self._allowed_tenants and not await self._tenant_allowed(request):
            return web.Response(status=403)
        if claims is None:
            response = await self._adapter.process(request, self._bridge)
            return response if response is not None else web.Response(status=201)
        return await self._process(claims, request)

    async def _process(self, claims: Claims, request: web.Request) -> web.StreamResponse:
        """Run an authenticated turn through botbuilder without validating the token again."""
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        activity = Activity().deserialize(await request.json())
        if not activity.type:
            return web.Response(status=400)
        identity = ClaimsIdentity(dict(claims.raw), True)
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        result.caller_id = CallerIdConstants.public_azure_channel
        result.connector_factory = self._auth.create_connector_factory(identity)
        invoke = await self._adapter.process_activity(result, activity, self._bridge.on_turn)
        if invoke is None:
            return web.Response(status=201)
        return web.json_response(serializer_helper(invoke.body), status=invoke.status)

    async def _tenant_allowed(self, request: web.Request) -> bool:
        try:
            body = await request.json()
        except ValueError:
            return True  # not JSON: botbuilder refuses it with its own answer
        data = body.get("channelData") if isinstance(body, dict) else None
        tenant = ((data or {}).get("tenant") or {}).get("id") if isinstance(data, dict) else None
        if tenant is None and isinstance(body, dict):
            tenant = (body.get("conversation") or {}).get("tenantId")
        if isinstance(tenant, str) and tenant.lower() in self._allowed_tenants:
            return True
        digest = hashlib.sha256(str(tenant).encode()).hexdigest()[:12]
        log.warning("activity refused: tenant %s is not allowed", digest)
        return False

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        """Let the error reach the caller: the HTTP edge or the outbox decides what it means."""
        raise error

    async def post_card(self, ref: ConversationRef, card: Card) -> str:
        """Post ``card`` as a new message in the conversation; returns its activity id."""
        return await self._rest.send(ref.service_url, ref.conversation_id, _outgoing(ref, card))

    async def update_card(self, ref: ConversationRef, activity_id: str, card: Card) -> None:
        """Replace the card at ``activity_id`` with ``card`` (same message, new content)."""
        activity = _outgoing(ref, card)
        activity["id"] = activity_id
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
        credentials = await self._credentials.create_credentials(
            self._app_id,
            AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
            self._login_endpoint,
            True,
        )
        token = await asyncio.to_thread(credentials.get_access_token)
        self._token = (token, time.monotonic() + 300)
        return str(token)


def _outgoing(ref: ConversationRef, card: Card) -> dict[str, Any]:
    """The JSON of a card activity addressed from the bot to ``ref``'s conversation."""
    activity = TurnContext.apply_conversation_reference(_card_activity(card), _reference(ref))
    body: dict[str, Any] = activity.serialize()
    return body


def _reference(ref: ConversationRef) -> ConversationReference:
    return ConversationReference(
        bot=ChannelAccount(id=ref.bot_id, name=ref.bot_name),
        conversation=ConversationAccount(
            id=ref.conversation_id,
            is_group=ref.kind is not ConversationKind.PERSONAL,
            conversation_type=ref.kind.value,
            tenant_id=ref.tenant_id,
        ),
        channel_id=ref.channel_id,
        service_url=ref.service_url,
    )
