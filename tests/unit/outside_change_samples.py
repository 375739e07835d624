"""Changes made outside Warden, drawn as the auditors' alert and summary cards.

The golden variants of ``tests/unit/test_cards.py`` for ``cards.outside_changes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cards.outside_changes import outside_change_card, outside_changes_summary_card
from core.outside_changes import ChangeKind, OutsideChange, RecordKind

FILED = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
FOUND = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

REPLACED = OutsideChange(
    record=RecordKind.EVIDENCE_FILE,
    change=ChangeKind.REPLACED,
    item_id="01ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    name="backup-restore-report.pdf",
    who="Megan Bowen <MeganB@contoso.onmicrosoft.com>",
    detail=f"its bytes hash to {FOUND}, Warden filed {FILED}",
    expected_hash=FILED,
    found_hash=FOUND,
    request_id="EVR-2026-0042",
    requirement_id="ISO27001-A.8.13",
    web_url="https://contoso.sharepoint.com/sites/Evidence/Evidence/ISO27001-A.8.13/backup-restore-report.pdf",
)
EDITED = OutsideChange(
    record=RecordKind.REQUEST_ITEM,
    change=ChangeKind.EDITED,
    item_id="7",
    name="ISO27001-A.8.13 EVR-2026-0042",
    who="Adele Vance",
    detail="Status says 'Rejected', Warden recorded 'Approved'",
    request_id="EVR-2026-0042",
    requirement_id="ISO27001-A.8.13",
)
DELETED = OutsideChange(
    record=RecordKind.AUDIT_ITEM,
    change=ChangeKind.DELETED,
    item_id="2",
    name="Seq 2",
    who="someone (SharePoint did not say who)",
    detail="the entry is gone from the Audit Log: the chain has a gap",
    expected_hash=FILED,
)

OUTSIDE_CHANGE_VARIANTS: dict[str, Callable[[], dict[str, Any]]] = {
    "outside_change_file_replaced": lambda: outside_change_card(REPLACED),
    "outside_change_column_edited": lambda: outside_change_card(EDITED),
    "outside_change_summary": lambda: outside_changes_summary_card([EDITED, DELETED]),
}
