"""Defender XDR's settings (``WARDEN_DEFENDER__<FIELD>``): incidents through Graph security.

Defender XDR is a second incident source beside Sentinel: its incidents are read from
Microsoft Graph (``security/incidents``) with the Azure app identity Warden already uses
(``WARDEN_AZURE_CLIENT_ID`` and its secret), which needs the ``SecurityIncident.ReadWrite.All``
application permission. A conversation receives them after ``subscribe incidents from
defender``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DefenderSettings(BaseModel):
    """The Defender XDR source's settings; every field has a ``WARDEN_DEFENDER__`` variable."""

    enabled: bool = Field(
        False, description="Poll Defender XDR incidents through Microsoft Graph security."
    )
    poll_seconds: float = Field(60.0, gt=0, description="How often updated incidents are read.")
    poll_overlap_seconds: float = Field(
        300.0, ge=0, description="How far before the checkpoint each poll reads again."
    )
    first_lookback_hours: float = Field(
        24.0, gt=0, description="How far back the very first poll reads (no checkpoint yet)."
    )
    page_size: int = Field(50, ge=1, le=50, description="Incidents asked for per page (1-50).")
