"""Azure budget alerts' settings (``WARDEN_BUDGETS__<FIELD>``): webhook tokens and channels.

An action group's webhook carries no signature, so Warden's budget webhook URL carries a
secret ``?token=``; any one of ``webhook_tokens`` opens it (rotation: add the new token,
move the action groups, drop the old one). The webhook is on when a token is set.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

_VARIABLE = "WARDEN_BUDGETS__"
_MIN_TOKEN = 24


class BudgetsSettings(BaseModel):
    """The budget alerts' settings; every field has a ``WARDEN_BUDGETS__`` variable."""

    webhook_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated secret tokens of `POST /api/webhooks/budgets?token=…` "
        f"(at least {_MIN_TOKEN} characters each; any one opens it, for rotation); "
        "empty: no budget webhook.",
    )
    channels: dict[str, str] = Field(
        default_factory=dict,
        description="JSON map of a subscription id, or `<subscription id>/<resource group>`, "
        "to the conversation id where its budget alerts are posted (a resource group's entry "
        "wins over its subscription's; a scope subscribed in Teams with `subscribe budgets` "
        "wins over its entry here).",
    )
    operators_channel: str | None = Field(
        None,
        description="Conversation id where budget alerts of unmapped scopes are posted "
        "(required with a webhook token); Warden must be installed there.",
    )

    @field_validator("webhook_tokens", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_tokens")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(token.get_secret_value()) < _MIN_TOKEN for token in value):
            raise ValueError(f"each token needs at least {_MIN_TOKEN} characters")
        return value

    @field_validator("channels")
    @classmethod
    def _lower_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {key.strip().strip("/").lower(): channel for key, channel in value.items()}

    @model_validator(mode="after")
    def _somewhere(self) -> BudgetsSettings:
        if self.webhook_tokens and not self.operators_channel:
            raise ValueError(
                f"{_VARIABLE}WEBHOOK_TOKENS is set but {_VARIABLE}OPERATORS_CHANNEL is not: "
                "alerts of unmapped subscriptions would go nowhere"
            )
        return self

    @property
    def enabled(self) -> bool:
        """True when the budget webhook accepts alerts."""
        return bool(self.webhook_tokens)
