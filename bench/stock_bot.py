"""Servers the turns benchmark measures: stock botbuilder, a bare aiohttp handler, and Warden.

``python -m bench.stock_bot KIND --port P`` serves ``/api/messages`` (and ``/healthz``):

- ``bare``: reads the JSON body and answers 200, the least any bot endpoint can do;
- ``bare-card``: the same, answering a small card as an invoke response (``bench.invoke``);
- ``stock``: botbuilder's own ``CloudAdapter`` + ``ConfigurationBotFrameworkAuthentication``
  with a trivial ``ActivityHandler`` that replies with one text message (no Warden code);
- ``stock-silent``: the same adapter with a handler that does nothing on a message;
- ``warden``: ``app.create_app`` from the environment's settings (production mode).

The stock bot reads the same environment as Warden: ``MICROSOFT_APP_ID``,
``MICROSOFT_APP_PASSWORD`` and ``BOT_OPENID_METADATA_URL``, so both authenticate every turn.
``BENCH_ENTRA_URL`` names a local Entra ID (the ARM sandbox, over TLS): both the stock bot
and Warden then fetch their outbound tokens there (see ``use_local_entra``).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import msal.authority  # type: ignore[import-untyped]
from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.core.invoke_response import InvokeResponse
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import AdaptiveCardInvokeResponse, CallerIdConstants
from botframework.connector.auth import AuthenticationConstants

ENTRA_ENV = "BENCH_ENTRA_URL"
"""The environment variable naming the local Entra ID (``https://host:port``)."""

_CARD_TYPE = "application/vnd.microsoft.card.adaptive"
_CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "ok"}]}


def use_local_entra(url: str) -> None:
    """Send botbuilder's outbound-token requests to the Entra ID at ``url``, in this process.

    botbuilder builds ``MicrosoftAppCredentials`` on
    ``AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX`` (read at call time), and
    MSAL asks login.microsoftonline.com for "instance discovery" of any authority host it
    does not know; botbuilder gives no way to turn that off. So the prefix is pointed at
    ``url`` and its host is added to MSAL's known hosts: MSAL then reads the local
    ``/botframework.com/v2.0/.well-known/openid-configuration`` and posts to its token
    endpoint, exactly as it would against Entra ID.
    """
    base = url.rstrip("/").lower() + "/"
    tenant = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
    AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX = base
    AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL = base + tenant
    known = msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
    msal.authority.WELL_KNOWN_AUTHORITY_HOSTS = frozenset({*known, urlsplit(base).hostname})


class StockConfig:
    """What ``ConfigurationBotFrameworkAuthentication`` reads: public cloud, local keys."""

    def __init__(self, app_id: str, password: str, metadata_url: str) -> None:
        """Public-cloud values, except the OpenID metadata of the channel's keys."""
        self.APP_ID = app_id
        self.APP_PASSWORD = password
        self.APP_TYPE = "MultiTenant"
        self.APP_TENANTID = ""
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = metadata_url
        self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = metadata_url
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = (
            AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        )
        self.TO_CHANNEL_FROM_BOT_LOGIN_URL = (
            AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
        )
        self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = (
            AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        )
        self.OAUTH_URL = AuthenticationConstants.OAUTH_URL
        self.CALLER_ID = CallerIdConstants.public_azure_channel
        self.VALIDATE_AUTHORITY = True


class StockBot(ActivityHandler):  # type: ignore[misc]
    """The least a Teams bot does: one text reply to a message, a card to a card action."""

    def __init__(self, *, reply: bool) -> None:
        """``reply``: answer a message with one text message (else do nothing)."""
        self._reply = reply

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """Reply with one text message through the Bot Connector, or do nothing."""
        if self._reply:
            await turn_context.send_activity("Commands: subscribe incidents, status, help")

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        """Answer an ``adaptiveCard/action`` with a small card, in the HTTP response.

        ``on_invoke_activity`` rather than ``on_adaptive_card_invoke``: with ``CloudAdapter``,
        botbuilder 4.17.1 serializes the latter's answer twice and fails every such turn
        with a 500 (``'dict' object has no attribute 'is_xml_model'``).
        """
        if turn_context.activity.name != "adaptiveCard/action":
            return InvokeResponse(status=501)
        body = AdaptiveCardInvokeResponse(status_code=200, type=_CARD_TYPE, value=_CARD)
        return InvokeResponse(status=200, body=body)


def stock_app(*, reply: bool) -> web.Application:
    """The stock botbuilder bot, configured from the environment as Warden is."""
    config = StockConfig(
        os.environ["MICROSOFT_APP_ID"],
        os.environ["MICROSOFT_APP_PASSWORD"],
        os.environ["BOT_OPENID_METADATA_URL"],
    )
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    bot = StockBot(reply=reply)

    async def messages(request: web.Request) -> web.StreamResponse:
        response = await adapter.process(request, bot)
        return response if response is not None else web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", _healthz)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _bare(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"ok": True})


async def _bare_card(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"statusCode": 200, "type": _CARD_TYPE, "value": _CARD})


def bare_app(*, card: bool = False) -> web.Application:
    """An aiohttp handler that reads the JSON body and answers 200 (with a small ``card``)."""
    app = web.Application()
    app.router.add_post("/api/messages", _bare_card if card else _bare)
    app.router.add_get("/healthz", _healthz)
    return app


def warden_app(port: int) -> web.Application:
    """Warden, built by its composition root from the environment's settings."""
    from app import create_app
    from core.settings import load_settings

    return create_app(load_settings(port=port))


def main() -> None:
    """Serve the named server on 127.0.0.1 until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["bare", "bare-card", "stock", "stock-silent", "warden"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if os.environ.get(ENTRA_ENV):
        use_local_entra(os.environ[ENTRA_ENV])
    apps: dict[str, Any] = {
        "bare": bare_app,
        "bare-card": lambda: bare_app(card=True),
        "stock": lambda: stock_app(reply=True),
        "stock-silent": lambda: stock_app(reply=False),
        "warden": lambda: warden_app(args.port),
    }
    app = apps[args.kind]()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
