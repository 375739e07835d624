"""Changes made to the evidence records outside Warden: what changed, who changed it, and
the hash that no longer matches.

Warden watches the *Evidence* library and the *Evidence Requests* and *Audit Log* lists
(``graph.delta_watch``). A change Warden did not make becomes an ``OutsideChange``: it is
appended to the audit chain (``changed_outside_warden``) and shown to the auditors as a card
(``cards.outside_changes``), one per change, or one summary after a resync.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from core.audit_chain import AuditAction, AuditDraft

UNKNOWN = "unknown"
"""The request or requirement of a change Warden cannot tie to one."""


class RecordKind(StrEnum):
    """Which of the evidence records changed."""

    EVIDENCE_FILE = "evidence file"
    REQUEST_ITEM = "evidence request item"
    AUDIT_ITEM = "audit log item"


class ChangeKind(StrEnum):
    """What happened to it."""

    REPLACED = "replaced"
    EDITED = "edited"
    DELETED = "deleted"
    ADDED = "added"


class OutsideChange(BaseModel):
    """One change to an evidence record that Warden did not make."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record: RecordKind
    change: ChangeKind
    item_id: str = Field(description="The list item or drive item id in SharePoint.")
    name: str = Field(description="What people see: a file name, a title, ``Seq 4``.")
    who: str = Field(description="Who changed it, as SharePoint reports (person or app).")
    detail: str = Field("", description="What differs from Warden's record.")
    expected_hash: str | None = Field(None, description="The hash Warden recorded.")
    found_hash: str | None = Field(None, description="The hash of what is there now.")
    request_id: str = UNKNOWN
    requirement_id: str = UNKNOWN
    web_url: str | None = None

    @property
    def headline(self) -> str:
        """One line: ``evidence file report.pdf replaced by Megan Bowen``."""
        return f"{self.record.value} {self.name} {self.change.value} by {self.who}"

    def audit_draft(self) -> AuditDraft:
        """The audit entry of this change (the actor is whoever made it)."""
        details: dict[str, JsonValue] = {
            "record": self.record.value,
            "change": self.change.value,
            "itemId": self.item_id,
            "name": self.name,
            "detail": self.detail,
            "expectedHash": self.expected_hash,
            "foundHash": self.found_hash,
        }
        return AuditDraft(
            actor=self.who or UNKNOWN,
            action=AuditAction.CHANGED_OUTSIDE_WARDEN,
            request_id=self.request_id or UNKNOWN,
            requirement_id=self.requirement_id or UNKNOWN,
            details=details,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON for an outbox payload."""
        return self.model_dump(mode="json")
