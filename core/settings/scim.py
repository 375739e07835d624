"""SCIM provisioning's settings (``WARDEN_SCIM__<FIELD>``): the bearer tokens and page size.

The endpoint (``/scim/v2``) is served when at least one token is set. Entra ID's provisioning
service sends the *Secret Token* of the enterprise application as a bearer; any configured
token is accepted, so a new one is added in front, Entra is switched to it, and the old one is
removed afterwards (rotation without a refused sync cycle).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

MIN_TOKEN_LENGTH = 32


class ScimSettings(BaseModel):
    """The SCIM endpoint's settings; every field has a ``WARDEN_SCIM__`` variable."""

    tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens of the SCIM endpoint (`/scim/v2`), at least "
        f"{MIN_TOKEN_LENGTH} characters each; any one is accepted (rotation: the current and "
        "the previous). Empty: no SCIM endpoint.",
    )
    max_results: int = Field(
        200, ge=1, le=1000, description="Largest page a SCIM list or search answers."
    )

    @property
    def enabled(self) -> bool:
        """True when a token is configured."""
        return bool(self.tokens)

    @field_validator("tokens", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(item.get_secret_value()) < MIN_TOKEN_LENGTH for item in value):
            raise ValueError(f"each token must be at least {MIN_TOKEN_LENGTH} characters")
        return value
