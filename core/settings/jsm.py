"""Jira Service Management's settings (``WARDEN_JSM__<FIELD>``): site, credentials, mapping.

JSM is on when ``base_url`` is set. Basic auth needs an account's e-mail and API token;
OAuth 2.0 needs a client id and secret (client credentials at ``token_url``). Warden's
outcomes become transitions found by their *name* (``transitions``), never by an id: each
workflow numbers its transitions differently.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

_VARIABLE = "WARDEN_JSM__"
_PROJECT = re.compile(r"[A-Z][A-Z0-9_]{0,9}")

DEFAULT_TRANSITIONS = {"Active": "In Progress", "Closed": "Resolve", "Canceled": "Cancel"}
"""Sentinel status → the name of the JSM transition that says it (a site may rename them)."""


class JsmSettings(BaseModel):
    """The JSM connector's settings; every field has a ``WARDEN_JSM__`` variable."""

    base_url: str | None = Field(
        None,
        description="Where the REST API is: the site, e.g. https://contoso.atlassian.net, or "
        "with OAuth https://api.atlassian.com/ex/jira/<cloud id> (off when unset).",
    )
    site_url: str | None = Field(
        None, description="Where people open issues (/browse/KEY); default: the base URL."
    )
    email: str | None = Field(None, description="Basic auth: the account's e-mail address.")
    api_token: SecretStr | None = Field(None, description="Basic auth: its API token.")
    client_id: str | None = Field(None, description="OAuth 2.0 client credentials: the id.")
    client_secret: SecretStr | None = Field(None, description="OAuth 2.0: the client secret.")
    token_url: str = Field(
        "https://auth.atlassian.com/oauth/token",
        description="OAuth 2.0: where client-credentials tokens come from.",
    )
    project: str = Field("SEC", description="The project key of the requests Warden links.")
    service_desk_id: str = Field("1", description="The service desk requests are created in.")
    request_type_id: str = Field("10", description="The request type Warden creates.")
    transitions: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TRANSITIONS),
        description='JSON: Sentinel status → transition name, e.g. {"Closed": "Resolve"} '
        "(keys Active, Closed, Canceled); found by name on each issue.",
    )
    poll_seconds: float = Field(60.0, gt=0, description="How often updated issues are read.")
    poll_overlap_seconds: float = Field(
        120.0, ge=0, description="How far before the checkpoint each poll reads again."
    )
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated secrets of Jira's admin webhook (X-Hub-Signature HMAC); "
        "any one verifies (rotation).",
    )

    @property
    def enabled(self) -> bool:
        """True when a site is configured."""
        return bool(self.base_url)

    @property
    def uses_oauth(self) -> bool:
        """True when OAuth 2.0 client credentials (rather than an API token) are configured."""
        return bool(self.client_id and self.client_secret)

    @property
    def browse_url(self) -> str:
        """The origin people open issues at (``site_url``, else ``base_url``)."""
        return str(self.site_url or self.base_url or "")

    @field_validator("base_url", "site_url")
    @classmethod
    def _check_site(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http") or not rest or "?" in rest or "#" in rest:
            raise ValueError(f"{value!r}: use an http(s) URL, e.g. https://x.atlassian.net")
        return url

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        if not _PROJECT.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a project key (e.g. SEC)")
        return value.strip()

    @field_validator("transitions")
    @classmethod
    def _check_transitions(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"Active", "Closed", "Canceled"}
        if unknown:
            raise ValueError(f"unknown statuses {sorted(unknown)} (use Active, Closed, Canceled)")
        return {status: name.strip() for status, name in value.items() if name.strip()}

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> JsmSettings:
        if not self.enabled:
            return self
        basic = (self.email, self.api_token)
        oauth = (self.client_id, self.client_secret)
        if any(oauth) and not all(oauth):
            raise ValueError(f"OAuth needs both {_VARIABLE}CLIENT_ID and {_VARIABLE}CLIENT_SECRET")
        if any(basic) and not all(basic):
            raise ValueError(f"an API token needs both {_VARIABLE}EMAIL and {_VARIABLE}API_TOKEN")
        if not any(oauth) and not any(basic):
            raise ValueError(
                f"{_VARIABLE}BASE_URL is set but no credentials: set {_VARIABLE}EMAIL and "
                f"{_VARIABLE}API_TOKEN, or {_VARIABLE}CLIENT_ID and {_VARIABLE}CLIENT_SECRET"
            )
        return self
