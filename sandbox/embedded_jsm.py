"""The sandbox Jira Service Management ``make run`` starts with ``WARDEN_SANDBOX_ITSM=jsm``.

Warden links incidents to one ITSM system: ServiceNow when it is connected, else Jira Service
Management. With ``WARDEN_SANDBOX_ITSM=jsm`` and neither configured, ``make run`` serves the
JSM sandbox (project SEC and its example requests) on ``WARDEN_SANDBOX_JSM_PORT`` in place of
the ServiceNow sandbox and connects Warden to it: an API token, and its admin webhook calling
Warden's ``/api/webhooks/jsm``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from pydantic import SecretStr

from core.settings import Settings
from sandbox.jsm import JsmSandbox, run_jsm_sandbox

JSM_EMAIL = "warden.integration@example.com"
"""The account Warden uses against the sandbox JSM."""


def embedded_jsm(settings: Settings) -> tuple[Settings, JsmSandbox]:
    """A sandbox JSM (not yet serving) and ``settings`` connected to it: basic auth with an API
    token, a webhook secret, a short poll."""
    token = secrets.token_urlsafe(18)
    jsm = JsmSandbox(email=JSM_EMAIL, api_token=token)
    connected = settings.model_copy(
        update={
            "jsm": settings.jsm.model_copy(
                update={
                    "base_url": f"http://127.0.0.1:{settings.sandbox_jsm_port}",
                    "email": JSM_EMAIL,
                    "api_token": SecretStr(token),
                    "webhook_secrets": [SecretStr(secrets.token_urlsafe(24))],
                    "poll_seconds": 30.0,
                }
            )
        }
    )
    return connected, jsm


@contextlib.asynccontextmanager
async def serving_jsm(jsm: JsmSandbox, settings: Settings) -> AsyncIterator[JsmSandbox]:
    """Serve ``jsm`` on its port, its admin webhook calling Warden's."""
    secret = settings.jsm.webhook_secrets[0].get_secret_value()
    jsm.set_webhook(f"http://127.0.0.1:{settings.port}/api/webhooks/jsm", secret)
    async with run_jsm_sandbox(port=settings.sandbox_jsm_port, sandbox=jsm) as up:
        yield up
