"""The evidence audit log as a hash chain: any edit, removal or reordering shows.

Each entry's ``hash`` is SHA-256 (hex) over the previous entry's hash followed by the
entry's canonical JSON without its ``hash`` (RFC 8785, the JSON Canonicalization Scheme,
through the ``rfc8785`` package: sorted keys, no whitespace, UTF-8). The first entry's
``prevHash`` is 64 zeros. ``verify`` names the first entry that does not match, and why.

Removing the newest entries leaves a valid, shorter chain: pass the last hash recorded
elsewhere (``head``) to ``verify`` to detect that too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import rfc8785
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_serializer,
    field_validator,
)

GENESIS = "0" * 64
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "audit-entry.schema.json"
_HASH = r"^[0-9a-f]{64}$"


class AuditAction(StrEnum):
    """What happened to an evidence request."""

    REQUESTED = "requested"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    REMINDED = "reminded"
    ESCALATED = "escalated"
    WRITTEN_BACK = "written_back"
    FILED = "filed"
    """Warden filed a submission in SharePoint: its item and SHA-256, so ``audit verify``
    re-hashes links, attestations and chat files too, not only files handed in as such."""
    RESOLVED_BY_POLICY = "resolved_by_policy"
    REASSIGNED = "reassigned"
    """The owner left (deprovisioned through SCIM): the request moved to their successor."""
    CHANGED_OUTSIDE_WARDEN = "changed_outside_warden"
    """Someone changed an evidence record in SharePoint without Warden (a file replaced, a
    column edited, an audit item deleted); the actor is who SharePoint says did it."""


class AuditDraft(BaseModel):
    """An event to record, before ``append`` numbers it and chains it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When it happened: UTC, RFC 3339 with microseconds and `Z`.",
        json_schema_extra={"format": "date-time"},
    )
    actor: str = Field(min_length=1, description="Who did it: a UPN, or `warden` for itself.")
    action: AuditAction
    request_id: str = Field(alias="requestId", min_length=1, description="The request.")
    requirement_id: str = Field(
        alias="requirementId", min_length=1, description="The catalog requirement."
    )
    details: dict[str, JsonValue] = Field(
        default_factory=dict, description="What else the action carries (free JSON)."
    )

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (RFC 3339), e.g. 2026-11-25T09:30:00Z")
        return value.astimezone(UTC)

    @field_serializer("at")
    def _rfc3339(self, value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditEntry(AuditDraft):
    """One link of the chain, as stored and published (JSON keys in camelCase)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    seq: int = Field(ge=1, description="Position in the chain, from 1, without gaps.")
    prev_hash: str = Field(
        alias="prevHash", pattern=_HASH, description="The previous entry's hash (genesis: zeros)."
    )
    hash: str = Field(
        pattern=_HASH, description="SHA-256 hex of prevHash + canonical JSON without hash."
    )

    def to_json(self) -> dict[str, Any]:
        """The entry as stored: camelCase keys, ``at`` in RFC 3339."""
        return self.model_dump(mode="json", by_alias=True)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (sorted keys, no whitespace, UTF-8)."""
    return rfc8785.dumps(value)


def entry_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """SHA-256 hex over ``prev_hash`` + canonical JSON of ``body`` (its ``hash`` left out)."""
    unsealed = {key: value for key, value in body.items() if key != "hash"}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(unsealed)).hexdigest()


def append(chain: list[AuditEntry], draft: AuditDraft) -> AuditEntry:
    """Number ``draft`` after the chain's last entry, seal it, add it to ``chain``, return it."""
    last = chain[-1] if chain else None
    body = draft.model_dump(mode="json", by_alias=True)
    body["seq"] = last.seq + 1 if last else 1
    body["prevHash"] = last.hash if last else GENESIS
    entry = AuditEntry.model_validate({**body, "hash": entry_hash(body["prevHash"], body)})
    chain.append(entry)
    return entry


class Tampering(StrEnum):
    """Why an entry does not match the chain."""

    MALFORMED = "malformed"  # not an audit entry at all
    ALTERED = "altered"  # its content does not match its hash
    REMOVED = "removed"  # entries before it are missing (a seq gap)
    REORDERED = "reordered"  # it is out of place (seq goes back, or a later entry is earlier)
    RELINKED = "relinked"  # prevHash is not the previous entry's hash
    TRUNCATED = "truncated"  # the chain ends before the expected head


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``: ``ok``, or the first bad entry and why."""

    checked: int
    position: int | None = None  # 0-based index of the first bad entry
    seq: int | None = None
    problem: Tampering | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every entry matched."""
        return self.problem is None


def verify(
    entries: Iterable[AuditEntry | Mapping[str, Any]], *, head: str | None = None
) -> VerifyResult:
    """Check the chain from genesis; name the first entry that does not match and why.

    ``head``, when given, is the hash the last entry must have (recorded elsewhere), which
    also catches the removal of the newest entries.
    """
    items = list(entries)
    prev_hash, prev_seq = GENESIS, 0
    for position, item in enumerate(items):
        try:
            entry = item if isinstance(item, AuditEntry) else AuditEntry.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return VerifyResult(
                position, position, None, Tampering.MALFORMED, f"{where}: {first['msg']}"
            )
        body = entry.to_json()
        if not hmac.compare_digest(entry_hash(entry.prev_hash, body), entry.hash):
            return _bad(position, entry, Tampering.ALTERED, "its content does not match its hash")
        if entry.seq != prev_seq + 1:
            return _seq_problem(items, position, entry, prev_seq)
        if not hmac.compare_digest(entry.prev_hash, prev_hash):
            return _bad(
                position,
                entry,
                Tampering.RELINKED,
                f"its prevHash is not the hash of seq {prev_seq}: "
                "that entry was rewritten, or entries were removed or reordered",
            )
        prev_hash, prev_seq = entry.hash, entry.seq
    if head is not None and not hmac.compare_digest(prev_hash, head):
        reason = f"the chain ends at seq {prev_seq}, whose hash is not the expected head"
        return VerifyResult(len(items), len(items), None, Tampering.TRUNCATED, reason)
    return VerifyResult(len(items))


def _bad(position: int, entry: AuditEntry, problem: Tampering, why: str) -> VerifyResult:
    reason = f"seq {entry.seq} (position {position}) is {problem.value}: {why}"
    return VerifyResult(position, position, entry.seq, problem, reason)


def _seq_problem(
    items: list[AuditEntry | Mapping[str, Any]], position: int, entry: AuditEntry, prev_seq: int
) -> VerifyResult:
    expected = prev_seq + 1
    later = {_seq_of(item) for item in items[position + 1 :]}
    if entry.seq <= prev_seq or expected in later:
        why = f"seq {expected} should come before it"
        if entry.seq <= prev_seq:
            why = f"it follows seq {prev_seq}"
        return _bad(position, entry, Tampering.REORDERED, why)
    missing = f"seq {expected}" if entry.seq == expected + 1 else f"seq {expected}–{entry.seq - 1}"
    return _bad(position, entry, Tampering.REMOVED, f"{missing} before it is missing")


def _seq_of(item: object) -> Any:
    if isinstance(item, AuditEntry):
        return item.seq
    return item.get("seq") if isinstance(item, Mapping) else None


def schema_document() -> str:
    """The JSON Schema of a stored audit entry, as published in ``docs/schemas``."""
    schema = AuditEntry.model_json_schema(by_alias=True, mode="serialization")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Write ``schema_document()`` to ``path`` (regenerate after changing the model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_document(), encoding="utf-8")
