"""The Teams app package's settings (``WARDEN_MANIFEST__<FIELD>``), read by ``manifest build``.

Formats are checked here, once, like every other setting; whether the package is complete
(an app id, a public host, a support page) is for ``manifest.build.problems`` to say, since
Warden runs without a package in sandbox mode.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

_HOST = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
)
_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
"""The manifest schema's ``semver`` definition: MAJOR.MINOR.PATCH, no leading zeros."""


def is_host_name(value: str) -> bool:
    """True when ``value`` is a lower-case DNS host name with a dot (no IP address, no port)."""
    return bool(_HOST.fullmatch(value))


class ManifestSettings(BaseModel):
    """What the Teams app package says about this installation of Warden."""

    public_host: str | None = Field(
        None,
        description="The host name Teams reaches Warden on (e.g. warden.contoso.com): the "
        "package's valid domain and the SSO resource.",
    )
    version: str = Field(
        "1.0.0",
        description="The package's version, `MAJOR.MINOR.PATCH`; raise it for every package "
        "you upload, Teams refuses an update whose version is not higher.",
    )
    name: str = Field(
        "Warden",
        min_length=1,
        max_length=30,
        description="The app's name in Teams (at most 30 characters), e.g. `Warden (test)` "
        "to tell a test package from the production one.",
    )
    developer_name: str = Field(
        "Warden",
        min_length=1,
        max_length=32,
        description="The publisher shown on the app's details page (at most 32 characters), "
        "usually your organisation.",
    )
    website_url: str | None = Field(
        None,
        description="The app's support page (https); Teams requires one in the package.",
    )
    privacy_url: str | None = Field(
        None,
        description="The privacy statement (https); unset: `WARDEN_MANIFEST__WEBSITE_URL`.",
    )
    terms_url: str | None = Field(
        None,
        description="The terms of use (https); unset: `WARDEN_MANIFEST__WEBSITE_URL`.",
    )
    accent_color: str = Field(
        "#0F6CBD",
        pattern=r"^#[0-9A-Fa-f]{6}$",
        description="The colour Teams shows behind the app's icons, `#RRGGBB`.",
    )

    @field_validator("public_host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        host = value.strip().lower().rstrip(".")
        if not is_host_name(host):
            raise ValueError(
                f"{value!r}: give the host name alone, e.g. warden.contoso.com "
                "(no https://, port or path)"
            )
        return host

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _SEMVER.fullmatch(value.strip()):
            raise ValueError(f"{value!r}: use MAJOR.MINOR.PATCH, e.g. 1.4.0")
        return value.strip()

    @field_validator("website_url", "privacy_url", "terms_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip()
        if not url.startswith("https://") or len(url) <= len("https://") or len(url) > 2048:
            raise ValueError(f"{value!r}: must be an https:// address")
        return url
