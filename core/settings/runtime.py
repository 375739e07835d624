"""How Warden runs: its mode, where it listens, its local state and the sandbox servers.

Flat settings (``WARDEN_<FIELD>``) that ``core.settings.Settings`` inherits; the store's
encryption keys and the log pepper are here too, with the checks of their format.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from core.crypto import is_valid_key


class Mode(StrEnum):
    """How Warden runs: against the local sandbox, or against a real tenant."""

    SANDBOX = "sandbox"
    PRODUCTION = "production"


def split_list(value: Any) -> Any:
    """A comma-separated variable as a list of its non-blank parts; other values unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RuntimeFields(BaseModel):
    """Where Warden listens, where it keeps its state, and how it protects and traces it."""

    mode: Mode = Field(Mode.SANDBOX, description="`sandbox` (local, no tenant) or `production`.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(3978, ge=0, le=65535, description="Port the HTTP server binds.")
    var_dir: Path = Field(Path("var"), description="Directory for local state (SQLite, keys).")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite under `var/`. "
        "Use `postgresql+asyncpg://…` for PostgreSQL.",
    )
    store_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a store call waits for a lock or an answer; "
        "after that, ingest answers 503 with Retry-After.",
    )
    auto_migrate: bool = Field(True, description="Apply database migrations at start.")
    migrate_apart: bool = Field(
        True,
        description="Apply them in a child process, so the server never loads alembic "
        "(about 8 MiB it would keep resident after a first start or an upgrade).",
    )
    record_dir: Path | None = Field(
        None,
        description="When set, every accepted inbound webhook and Teams activity is appended, "
        "scrubbed as the logs are, to a JSON-lines file per day here, for `app.py replay`.",
    )
    log_pepper: SecretStr = Field(
        SecretStr(""),
        description="Secret key of the pseudonyms that stand for e-mails, UPNs and addresses in "
        "logs; without it they are plain SHA-256 (guessable for a known address).",
    )
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys (32 random bytes, url-safe base64) that encrypt stored incidents, jobs "
        "and conversation references (comma-separated or a JSON list; `python app.py keys "
        "generate` makes one). The first "
        "encrypts, all decrypt: put a new key in front, then `python app.py keys rotate`. "
        "Required in production mode; in sandbox mode a key is generated under `var/` when unset.",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces (off when unset)."
    )

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("not a valid JSON list of keys") from None
        return split_list(value)

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for position, item in enumerate(value, start=1):
            if not is_valid_key(item.get_secret_value()):
                raise ValueError(
                    f"key {position} is not a Fernet key (url-safe base64 of 32 bytes; "
                    "`python app.py keys generate` makes one)"
                )
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'warden.db').resolve()}"


class SandboxFields(BaseModel):
    """The ports of the sandbox servers `make run` starts when a real service is not set."""

    playground_port: int = Field(
        56150, ge=0, le=65535, description="Port of the Agents Playground that `make run` starts."
    )
    sandbox_arm_port: int = Field(
        56160,
        ge=0,
        le=65535,
        description="Port of the sandbox Sentinel (ARM, Entra ID, Graph) that `make run` starts "
        "when no Sentinel is configured, so triage works in the Playground.",
    )
    sandbox_servicenow_port: int = Field(
        56170,
        ge=0,
        le=65535,
        description="Port of the sandbox ServiceNow that `make run` starts when no ServiceNow "
        "is configured, so incidents can be linked to change requests in the Playground.",
    )
    sandbox_graph_port: int = Field(
        56180,
        ge=0,
        le=65535,
        description="Port of the sandbox Microsoft Graph (SharePoint) that `make run` starts "
        "when no SharePoint site is configured, so evidence is filed in the Playground.",
    )
    sandbox_itsm: Literal["servicenow", "jsm"] = Field(
        "servicenow",
        description="The ITSM sandbox `make run` connects when no ITSM system is configured: "
        "`servicenow`, or `jsm` to try Jira Service Management in its place.",
    )
    sandbox_jsm_port: int = Field(
        56200,
        ge=0,
        le=65535,
        description="Port of the sandbox Jira Service Management that `make run` starts when "
        "`WARDEN_SANDBOX_ITSM` is `jsm`.",
    )
    sandbox_azurite_port: int = Field(
        56190,
        ge=0,
        le=65535,
        description="Port of Azurite (blob storage) that `make run` starts, when it is installed "
        "and no cost exports are configured, with a sample export for `costs ingest` (0: off).",
    )
