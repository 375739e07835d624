"""ServiceNow's settings (``WARDEN_SERVICENOW__<FIELD>``): instance, credentials, mapping.

ServiceNow is on when ``instance_url`` is set. Basic auth needs a user name and password;
OAuth2 client credentials need a client id and secret (the token comes from the
instance's ``/oauth_token.do``). The mapping overrides are read by
``connectors.servicenow.fields``; each is JSON in its variable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

_VARIABLE = "WARDEN_SERVICENOW__"
_WHSEC = re.compile(r"whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def whsec_problem(secret: str) -> str | None:
    """Why ``secret`` is not a ``whsec_``-prefixed base64 webhook secret; None when it is."""
    if not secret.startswith("whsec_"):
        return "each secret must start with 'whsec_'"
    if len(secret) == len("whsec_") or not _WHSEC.fullmatch(secret):
        return "the part after 'whsec_' must be base64"
    return None


class ServiceNowSettings(BaseModel):
    """The ServiceNow connector's settings; every field has a ``WARDEN_SERVICENOW__`` variable."""

    instance_url: str | None = Field(
        None, description="The instance, e.g. https://contoso.service-now.com (off when unset)."
    )
    username: str | None = Field(None, description="Basic auth: the integration user.")
    password: SecretStr | None = Field(None, description="Basic auth: its password.")
    client_id: str | None = Field(None, description="OAuth2 client credentials: the client id.")
    client_secret: SecretStr | None = Field(None, description="OAuth2: the client secret.")
    poll_seconds: float = Field(60.0, gt=0, description="How often changed records are read.")
    poll_overlap_seconds: float = Field(
        120.0, ge=0, description="How far before the checkpoint each poll reads again."
    )
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `whsec_…` secrets of the business-rule webhook; any one "
        "verifies (rotation).",
    )
    ca_bundle: str | None = Field(
        None, description="A PEM file of CAs to trust for the instance (default: certifi)."
    )
    severity_priority: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description='JSON: Sentinel severity → [impact, urgency], e.g. {"High": [1, 2]}; '
        "priority follows ServiceNow's impact × urgency lookup.",
    )
    change_states: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: Sentinel status → change_request state, e.g. {"Active": "-2"} '
        "(keys New, Active, Closed, Canceled).",
    )
    incident_states: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: Sentinel status → incident state, e.g. {"Closed": "7"} '
        "(keys New, Active, Closed, Canceled).",
    )

    @property
    def enabled(self) -> bool:
        """True when an instance is configured."""
        return bool(self.instance_url)

    @property
    def uses_oauth(self) -> bool:
        """True when OAuth2 client credentials (rather than basic auth) are configured."""
        return bool(self.client_id and self.client_secret)

    @field_validator("instance_url")
    @classmethod
    def _check_instance(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http") or not rest or "/" in rest:
            raise ValueError(
                f"{value!r}: use the instance's origin, e.g. https://x.service-now.com"
            )
        return url

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _check_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        problems = (whsec_problem(item.get_secret_value()) for item in value)
        problem = next((p for p in problems if p), None)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> ServiceNowSettings:
        if not self.enabled:
            return self
        basic = (self.username, self.password)
        oauth = (self.client_id, self.client_secret)
        if any(oauth) and not all(oauth):
            raise ValueError(f"OAuth needs both {_VARIABLE}CLIENT_ID and {_VARIABLE}CLIENT_SECRET")
        if any(basic) and not all(basic):
            raise ValueError(f"basic auth needs both {_VARIABLE}USERNAME and {_VARIABLE}PASSWORD")
        if not any(oauth) and not any(basic):
            raise ValueError(
                f"{_VARIABLE}INSTANCE_URL is set but no credentials: set {_VARIABLE}USERNAME "
                f"and {_VARIABLE}PASSWORD, or {_VARIABLE}CLIENT_ID and {_VARIABLE}CLIENT_SECRET"
            )
        return self
