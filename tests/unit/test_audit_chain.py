"""The audit hash chain: a clean chain verifies, and each kind of tampering is named."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from core.audit_chain import (
    GENESIS,
    SCHEMA_PATH,
    AuditAction,
    AuditDraft,
    AuditEntry,
    Tampering,
    append,
    canonical_json,
    entry_hash,
    schema_document,
    verify,
)

START = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ACTIONS = [
    AuditAction.REQUESTED,
    AuditAction.REMINDED,
    AuditAction.SUBMITTED,
    AuditAction.CHANGES_REQUESTED,
    AuditAction.SUBMITTED,
    AuditAction.APPROVED,
]


def _chain(length: int = 6) -> list[AuditEntry]:
    chain: list[AuditEntry] = []
    for i in range(length):
        append(
            chain,
            AuditDraft(
                at=START + timedelta(hours=i),
                actor="ada@contoso.com" if i % 2 else "warden",
                action=ACTIONS[i % len(ACTIONS)],
                request_id="REQ-0042",
                requirement_id="CIS-AZ-3.1-STORAGE-ENCRYPTION",
                details={"step": i, "note": "Straße ✓"},
            ),
        )
    return chain


def _stored(chain: list[AuditEntry]) -> list[dict[str, Any]]:
    """The chain as it would be read back from storage (plain JSON)."""
    return [json.loads(json.dumps(entry.to_json())) for entry in chain]


def test_audit_chain_append_links_from_genesis() -> None:
    """The first entry follows 64 zeros; each next one follows its predecessor's hash."""
    chain = _chain(3)
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[0].prev_hash == GENESIS
    assert chain[1].prev_hash == chain[0].hash and chain[2].prev_hash == chain[1].hash


def test_audit_chain_hash_is_sha256_over_prev_and_canonical_body() -> None:
    """An entry's hash is SHA-256 hex of prevHash + canonical JSON of the entry without hash."""
    entry = _chain(1)[0]
    body = {k: v for k, v in entry.to_json().items() if k != "hash"}
    expected = hashlib.sha256(GENESIS.encode() + canonical_json(body)).hexdigest()
    assert entry.hash == expected == entry_hash(GENESIS, entry.to_json())


def test_audit_chain_entry_json_uses_camel_case_and_rfc3339_utc() -> None:
    """Stored entries use requestId/prevHash and a UTC RFC 3339 time ending in Z."""
    stored = _chain(1)[0].to_json()
    assert stored["at"] == "2026-11-25T09:30:00.000000Z"
    assert {"requestId", "requirementId", "prevHash", "hash", "seq"} <= stored.keys()


def test_audit_chain_time_converted_to_utc_and_naive_refused() -> None:
    """A time in another zone is stored in UTC; a time without a zone is refused."""
    paris = timezone(timedelta(hours=1))
    draft = AuditDraft(
        at=datetime(2026, 11, 25, 10, 30, tzinfo=paris),
        actor="warden",
        action=AuditAction.REQUESTED,
        request_id="R",
        requirement_id="X",
    )
    assert draft.model_dump(mode="json")["at"] == "2026-11-25T09:30:00.000000Z"
    with pytest.raises(ValidationError, match="time zone"):
        AuditDraft(
            at=datetime(2026, 11, 25),  # no zone: the point of the test
            actor="warden",
            action=AuditAction.REQUESTED,
            request_id="R",
            requirement_id="X",
        )


def test_audit_chain_canonical_json_stable_across_key_order() -> None:
    """The same object in any key order gives the same canonical bytes."""
    one = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": "z"}
    two = {"c": "z", "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(one) == canonical_json(two) == b'{"a":{"x":null,"y":[1,2]},"b":1,"c":"z"}'


def test_audit_chain_canonical_json_unicode_is_utf8_unescaped() -> None:
    """Non-ASCII text is raw UTF-8, not \\u escapes; keys sort by UTF-16 code units."""
    value = {"é": "Straße ✓", "z": "\u2028", "\U0001f600": 1, "\uffff": 2}
    encoded = canonical_json(value)
    assert "Straße ✓".encode() in encoded and b"\\u" not in encoded.replace(b"\\u2028", b"")
    # RFC 8785 sorts by UTF-16: the emoji (surrogate 0xD83D) comes before U+FFFF.
    assert encoded.index("\U0001f600".encode()) < encoded.index("\uffff".encode())


def test_audit_chain_clean_chain_verifies() -> None:
    """An untouched chain verifies, as models and as stored JSON."""
    chain = _chain()
    assert verify(chain).ok
    result = verify(_stored(chain), head=chain[-1].hash)
    assert result.ok and result.checked == 6


def test_audit_chain_empty_chain_verifies() -> None:
    """No entries is a valid (empty) chain."""
    assert verify([]).ok


def test_audit_chain_edited_field_named_altered() -> None:
    """Editing a field of entry 3 is reported as entry 3 altered."""
    stored = _stored(_chain())
    stored[2]["actor"] = "mallory@contoso.com"
    result = verify(stored)
    assert (result.problem, result.position, result.seq) == (Tampering.ALTERED, 2, 3)
    assert "seq 3" in result.reason and "does not match its hash" in result.reason


def test_audit_chain_edited_details_named_altered() -> None:
    """Editing a nested detail is caught the same way."""
    stored = _stored(_chain())
    stored[4]["details"]["step"] = 99
    result = verify(stored)
    assert (result.problem, result.seq) == (Tampering.ALTERED, 5)


def test_audit_chain_deleted_entry_named_removed() -> None:
    """Deleting entry 3 is reported at the entry after the gap, naming seq 3 as missing."""
    stored = _stored(_chain())
    del stored[2]
    result = verify(stored)
    assert (result.problem, result.position, result.seq) == (Tampering.REMOVED, 2, 4)
    assert "seq 3 before it is missing" in result.reason


def test_audit_chain_deleted_first_entry_named_removed() -> None:
    """Deleting the first entry is reported at the new first entry."""
    result = verify(_stored(_chain())[1:])
    assert (result.problem, result.position, result.seq) == (Tampering.REMOVED, 0, 2)


def test_audit_chain_deleted_last_entry_caught_with_head() -> None:
    """Deleting the newest entry is caught when the expected head hash is known."""
    chain = _chain()
    assert verify(chain[:-1]).ok  # without an anchor a shorter chain is still a chain
    result = verify(chain[:-1], head=chain[-1].hash)
    assert result.problem is Tampering.TRUNCATED and result.position == 5


def test_audit_chain_swapped_entries_named_reordered() -> None:
    """Swapping entries 3 and 4 is reported at the first of them, out of order."""
    stored = _stored(_chain())
    stored[2], stored[3] = stored[3], stored[2]
    result = verify(stored)
    assert (result.problem, result.position, result.seq) == (Tampering.REORDERED, 2, 4)
    assert "seq 3 should come before it" in result.reason


def test_audit_chain_changed_hash_named_altered() -> None:
    """Changing the stored hash of entry 2 is reported as entry 2 altered."""
    stored = _stored(_chain())
    stored[1]["hash"] = "f" * 64
    result = verify(stored)
    assert (result.problem, result.position, result.seq) == (Tampering.ALTERED, 1, 2)


def test_audit_chain_changed_prev_hash_named_altered() -> None:
    """Changing the prevHash of entry 4 (without resealing) is entry 4 altered."""
    stored = _stored(_chain())
    stored[3]["prevHash"] = "0" * 64
    result = verify(stored)
    assert (result.problem, result.seq) == (Tampering.ALTERED, 4)


def test_audit_chain_resealed_entry_named_at_next_link() -> None:
    """An entry edited and resealed breaks the next entry's link, which names it."""
    stored = _stored(_chain())
    stored[2]["actor"] = "mallory@contoso.com"
    stored[2]["hash"] = entry_hash(stored[2]["prevHash"], stored[2])
    result = verify(stored)
    assert (result.problem, result.position, result.seq) == (Tampering.RELINKED, 3, 4)
    assert "not the hash of seq 3" in result.reason


def test_audit_chain_malformed_entry_named() -> None:
    """An entry that is not an audit entry at all (an unknown key) is named malformed."""
    stored = _stored(_chain())
    stored[1]["comment"] = "added later"
    result = verify(stored)
    assert (result.problem, result.position) == (Tampering.MALFORMED, 1)
    assert "comment" in result.reason


def test_audit_chain_schema_file_current() -> None:
    """docs/schemas/audit-entry.schema.json is what the model generates."""
    current = SCHEMA_PATH.read_text(encoding="utf-8")
    assert current == schema_document(), (
        'regenerate: .venv/bin/python -c "from core.audit_chain import write_schema; '
        'write_schema()"'
    )


def test_audit_chain_stored_entries_valid_against_schema() -> None:
    """Every stored entry validates against the published schema."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    for entry in _stored(_chain()):
        jsonschema.validate(entry, schema, format_checker=jsonschema.FormatChecker())
