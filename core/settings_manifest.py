"""The Teams app package's settings (``WARDEN_MANIFEST__<FIELD>``), read by ``manifest build``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ManifestSettings(BaseModel):
    """What the Teams app package says about this installation of Warden."""

    public_host: str | None = Field(
        None,
        description="The host name Teams reaches Warden on (e.g. warden.contoso.com): the "
        "package's valid domain and the SSO resource.",
    )
