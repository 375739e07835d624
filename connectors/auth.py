"""What the ITSM connectors authenticate with: the ``Authenticator`` protocol and basic auth.

ServiceNow (an integration user and password) and Jira Service Management (an account's
e-mail address and API token) both send HTTP basic auth; each connector's OAuth client
credentials, with its own token endpoint and error envelope, stay in its own ``auth`` module.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

REFRESH_MARGIN = 60.0
"""Seconds before ``expires_in`` when an OAuth token is fetched again."""


class Authenticator(Protocol):
    """Gives the ``Authorization`` header of the next call."""

    @property
    def renewable(self) -> bool:
        """True when a 401 may be cured by fetching new credentials (a new token)."""
        ...

    async def header(self) -> str:
        """The ``Authorization`` header value."""
        ...

    def forget(self) -> None:
        """Drop what the service refused with 401."""
        ...


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth with a user name (or e-mail address) and a password (or API token)."""

    username: str
    password: SecretStr
    renewable: bool = False

    async def header(self) -> str:
        """``Basic base64(user:password)``."""
        raw = f"{self.username}:{self.password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def forget(self) -> None:
        """Nothing to forget: a refused password stays refused."""
