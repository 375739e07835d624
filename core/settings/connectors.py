"""Feature flags per connector (``WARDEN_CONNECTORS__<NAME>__ENABLED``).

A connector runs when it is configured and its flag is on (the default). Turning the flag off
keeps it inert even when configured: nothing of it starts and its chat commands say it is off.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConnectorFlag(BaseModel):
    """One connector's switch."""

    enabled: bool = Field(True, description="Off: the connector starts nothing, even if set up.")


class ConnectorFlags(BaseModel):
    """Every connector's switch, by connector name."""

    sentinel: ConnectorFlag = Field(default_factory=ConnectorFlag)
    policy: ConnectorFlag = Field(default_factory=ConnectorFlag)
    servicenow: ConnectorFlag = Field(default_factory=ConnectorFlag)
    jsm: ConnectorFlag = Field(default_factory=ConnectorFlag)
    defender: ConnectorFlag = Field(default_factory=ConnectorFlag)
    sharepoint: ConnectorFlag = Field(default_factory=ConnectorFlag)
