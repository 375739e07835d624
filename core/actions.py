"""The data contracts of card actions: what each button may send, and nothing more.

Action data comes from a client and is never trusted to carry identity (the acting user,
tenant and conversation come from the authenticated activity). Unknown fields are refused,
so a crafted payload cannot set what the button does not offer (no mass assignment).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RefreshData(BaseModel):
    """What a *Refresh* button sends: the incident's key, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident: str = Field(min_length=1, max_length=1024)
