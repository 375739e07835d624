"""Evidence-library change detection's settings (``WARDEN_DELTA__<FIELD>``).

Warden reads Graph delta queries on the *Evidence* library and the *Evidence Requests* and
*Audit Log* lists (``graph.delta_watch``) when SharePoint is configured; changes made
outside Warden are audited and posted to ``WARDEN_AUDITORS_CHANNEL``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeltaSettings(BaseModel):
    """The change watch's settings; every field has a ``WARDEN_DELTA__`` variable."""

    poll_seconds: float = Field(
        300.0,
        ge=0,
        description="Seconds between two delta rounds on the evidence library and lists "
        "(one replica at a time); 0 turns change detection off.",
    )
    page_size: int = Field(
        200, ge=1, le=999, description="Changes asked of Graph per delta page (`$top`)."
    )
