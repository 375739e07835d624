"""What the edges of the ITSM sandboxes (ServiceNow, JSM) do alike.

Each sandbox keeps its own log entries, error envelope and middleware; these pieces are the
same in both: the body a log entry keeps, the scheme of the ``Authorization`` header, the
constant-time check of Basic credentials, and the connection reset of "down" mode.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web


class Entry(Protocol):
    """A request log entry that names the fault the sandbox injected."""

    fault: str | None


E = TypeVar("E", bound=Entry)


async def logged_body(request: web.Request, prefix: str) -> Any:
    """The body a log entry keeps: the JSON (or, when not JSON, the text) of a request under
    ``prefix``; None for bodiless requests and for other paths (form bodies hold secrets)."""
    if not (request.path.startswith(prefix) and request.can_read_body):
        return None
    text = await request.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


def auth_scheme(request: web.Request) -> str | None:
    """The scheme of the ``Authorization`` header (never its credentials); None without one."""
    return request.headers.get("Authorization", "").partition(" ")[0] or None


def basic_matches(credentials: str, user: str, secret: str) -> bool:
    """Whether Basic ``credentials`` (base64 of ``user:secret``) name ``user`` and ``secret``,
    compared in constant time; False when they are not base64 text."""
    try:
        given_user, _, given_secret = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    same_user = hmac.compare_digest(given_user.encode(), user.encode())
    return same_user and hmac.compare_digest(given_secret.encode(), secret.encode())


def reset_when_down(request: web.Request, entry: E, record: Callable[[E], None]) -> web.Response:
    """Log ``entry`` as refused by "down" mode and reset the connection (503 if it cannot be)."""
    entry.fault = "down"
    record(entry)
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=503)
