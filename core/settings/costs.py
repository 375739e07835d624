"""The cost exports ingest's settings (``WARDEN_COSTS__<FIELD>``): blob storage → daily costs.

Cost Management writes its exports to a storage container; Warden reads them with either a
connection string (Azurite, or an account key) or the account URL and Warden's Azure identity
(``AZURE_*``: a client secret when set, else a managed identity). ``export_path`` narrows the
ingest to one directory (or one export) of the container.
"""

from __future__ import annotations

import re
from datetime import time

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator, model_validator

_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class CostsSettings(BaseModel):
    """The cost exports ingest's settings; every field has a ``WARDEN_COSTS__`` variable."""

    connection_string: SecretStr = Field(
        SecretStr(""),
        description="Storage connection string of the account the exports are written to "
        "(Azurite's development string locally); set it or `WARDEN_COSTS__ACCOUNT_URL`.",
    )
    account_url: AnyHttpUrl | None = Field(
        None,
        description="Blob endpoint of the storage account (`https://<account>.blob.core."
        "windows.net`), read with Warden's Azure identity; used when no connection string.",
    )
    container: str = Field(
        "cost-exports", description="The container Cost Management exports write to."
    )
    export_path: str = Field(
        "",
        description="Directory (and optionally export name) inside the container to ingest "
        "(empty: every export in the container).",
    )
    batch_size: int = Field(
        4000,
        ge=100,
        le=4500,
        description="Resource-days upserted per statement (one multi-row INSERT per batch).",
    )
    nightly_at: time | None = Field(
        None,
        description="UTC time of day (HH:MM) the nightly ingest runs on the leading replica "
        "(off when unset; `python app.py costs ingest` runs it by hand).",
    )

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError("not a storage container name (3-63 lower-case letters, digits, -)")
        return value

    @field_validator("export_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _one_account(self) -> CostsSettings:
        if self.connection_string.get_secret_value() and self.account_url is not None:
            raise ValueError("set a connection string or an account URL, not both")
        return self

    @property
    def enabled(self) -> bool:
        """True when a storage account is configured."""
        return bool(self.connection_string.get_secret_value()) or self.account_url is not None
