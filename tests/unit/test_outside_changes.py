"""Changes made outside Warden: the classifier, the audit draft and the auditors' cards."""

from __future__ import annotations

import json

from bot.outside_changes import card_key
from cards.outside_changes import (
    SUMMARY_LIMIT,
    outside_change_card,
    outside_changes_summary_card,
)
from core.audit_chain import AuditAction
from core.outside_changes import UNKNOWN
from core.store.outbox import Job
from graph.delta import Change
from graph.delta_watch import made_by_warden
from tests.unit.outside_change_samples import DELETED, EDITED, REPLACED

WARDEN = "6f1c2a52-3a4e-4d77-9c3b-0e5b8f1d2a10"


def test_made_by_warden_own_app_id_is_warden() -> None:
    """A change whose lastModifiedBy.application is Warden's app id is Warden's."""
    change = Change("1", etag='"a,2"', app_id=WARDEN.upper(), who="Warden")
    assert made_by_warden(change, '"a,1"', WARDEN)


def test_made_by_warden_person_after_accounted_etag_is_not() -> None:
    """A person's change after the eTag Warden accounted for is outside Warden."""
    change = Change("1", etag='"a,3"', who="Megan Bowen")
    assert not made_by_warden(change, '"a,2"', WARDEN)


def test_made_by_warden_accounted_etag_unchanged_is_warden() -> None:
    """An item whose eTag is still the one Warden accounted for changed nothing (resync)."""
    assert made_by_warden(Change("1", etag='"a,2"', who="Megan Bowen"), '"a,2"', WARDEN)


def test_made_by_warden_deletion_is_never_warden() -> None:
    """Warden deletes no evidence record: a removal is always outside Warden."""
    assert not made_by_warden(Change("1", deleted=True, app_id=WARDEN), None, WARDEN)


def test_audit_draft_unknown_request_uses_placeholder_and_actor() -> None:
    """An audit item deleted without a known request is audited under "unknown", by its actor."""
    draft = DELETED.audit_draft()
    assert draft.action is AuditAction.CHANGED_OUTSIDE_WARDEN
    assert (draft.request_id, draft.requirement_id) == (UNKNOWN, UNKNOWN)
    assert draft.actor == DELETED.who and draft.details["expectedHash"] == DELETED.expected_hash


def test_outside_change_card_unsafe_url_has_no_button() -> None:
    """A web URL that is not http(s) gives no "Open in SharePoint" button."""
    card = outside_change_card(REPLACED.model_copy(update={"web_url": "javascript:alert(1)"}))
    assert "actions" not in card


def test_outside_change_card_names_are_inert() -> None:
    """A name with Adaptive Card template braces or link syntax shows as plain text."""
    card = outside_change_card(EDITED.model_copy(update={"name": "{{DATE(x)}} [a](http://x)"}))
    text = json.dumps(card)
    assert "{{DATE" not in text and "](http" not in text


def test_outside_changes_summary_card_many_counts_the_rest() -> None:
    """A resync with more changes than a card lists names the first ones, counts the rest."""
    changes = [EDITED] * (SUMMARY_LIMIT + 3)
    card = outside_changes_summary_card(changes)
    assert len(card["body"][2]["facts"]) == SUMMARY_LIMIT
    assert card["body"][-1]["text"] == "…and 3 more."
    assert card["body"][0]["text"] == f"{SUMMARY_LIMIT + 3} evidence records changed outside Warden"


def test_card_key_same_for_a_job_run_again_distinct_for_other_alerts() -> None:
    """A card's key among posts in flight depends on its alerts alone (not their order, not
    the job's id); other alerts, or a job without alert keys, get another key that fits the
    store's 1,024-character column."""
    alerts = [["evidence", "item-1", '"a,2"'], ["audit", "item-9", 'deleted:"b,1"']]

    def job(job_id: int) -> Job:
        return Job(job_id, "audit.outside_change", "o", "19:auditors@thread.tacv2", {}, 0)

    key = card_key(job(1), alerts)
    assert key == card_key(job(2), list(reversed(alerts)))
    assert key.startswith("audit:") and len(key) <= 1024
    assert card_key(job(1), alerts[:1]) != key
    assert card_key(job(1), []) != card_key(job(2), []) != key
