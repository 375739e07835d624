"""Evidence requests in fixed states, drawn as the owner's and the reviewers' cards.

The golden variants of ``tests/unit/test_cards.py`` for ``cards.evidence``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from cards.evidence import owner_card, requested_card, reviewers_card
from cards.resources import ResourceFacts
from core.catalog import Requirement
from core.costs import ResourceCost
from core.evidence import Decision, EvidenceRequest, Submission
from core.itsm import ConfigurationItem
from core.store.evidence import RequestRecord

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
OWNER = "0a0a0a0a-0000-4000-8000-00000000000a"
RITA = "0b0b0b0b-0000-4000-8000-00000000000b"
SAM = "0c0c0c0c-0000-4000-8000-00000000000c"
NAMES = {OWNER: "Olivia Owner", RITA: "Rita Reviewer", SAM: "Sam Second"}
DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

REQUIREMENT = Requirement.model_validate(
    {
        "id": "ISO-A.5.15",
        "title": "Access reviews of privileged roles",
        "guidance": "Show the latest quarterly access review and its sign-off.",
        "evidence": ["link", "attestation"],
        "owner": "owner@contoso.com",
        "reviewers": ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"],
        "approvals": 2,
        "due_days": 30,
    }
)


def request(**changes: Any) -> EvidenceRequest:
    """An open chat request for Olivia, with ``changes``."""
    values: dict[str, Any] = {
        "id": "ab" * 16,
        "requirement_id": REQUIREMENT.id,
        "period": "2026-Q4",
        "owner": OWNER,
        "requested_by": RITA,
        "source": "chat",
        "due": date(2026, 12, 2),
        "approvals_needed": 2,
        "resources": ("/subscriptions/0000/resourceGroups/rg-prod",),
        "created_at": AT,
        "updated_at": AT,
        "updated_by": RITA,
    }
    return EvidenceRequest.model_validate({**values, **changes})


SUBMISSION = Submission.model_validate(
    {
        "kind": "attestation",
        "text": "We reviewed all 14 privileged role assignments.\nTwo were removed.",
        "sha256": DIGEST,
        "request_id": "ab" * 16,
        "version": 1,
        "submitted_by": OWNER,
        "at": AT,
    }
)


def decision(kind: str, by: str, comment: str = "") -> Decision:
    """A decision on version 1."""
    return Decision.model_validate(
        {
            "kind": kind,
            "comment": comment,
            "request_id": "ab" * 16,
            "submission": 1,
            "by": by,
            "at": AT,
        }
    )


GROUP = "/subscriptions/0000/resourceGroups/rg-prod/providers"
VM = f"{GROUP}/Microsoft.Compute/virtualMachines/vm-web-01"
DISK = f"{GROUP}/Microsoft.Compute/disks/vm-web-01-os"
ACCOUNT = f"{GROUP}/Microsoft.Storage/storageAccounts/stlogs01"
POLICY_RESOURCES = {"source": "policy", "scope": VM.lower(), "resources": (VM, DISK, ACCOUNT)}


def resource_facts() -> ResourceFacts:
    """The VM and its disk as CMDB CIs (ids lower-cased, the disk untagged); costs for the
    VM and the storage account, which the CMDB has not synced yet."""
    seen = AT
    vm = ConfigurationItem(
        ci_id=VM.lower(),
        name="vm-web-01",
        type="microsoft.compute/virtualmachines",
        owner="Olivia Owner",
        env="prod",
        last_seen_utc=seen,
    )
    disk = ConfigurationItem(
        ci_id=DISK.lower(), name="vm-web-01-os", type="microsoft.compute/disks", last_seen_utc=seen
    )
    return ResourceFacts(
        cis={vm.ci_id: vm, disk.ci_id: disk},
        costs={
            VM.lower(): ResourceCost(VM.lower(), 1234.5, "EUR"),
            ACCOUNT.lower(): ResourceCost(ACCOUNT.lower(), 6.25, "EUR"),
        },
    )


SUBMITTED = {"status": "submitted", "submission": 1, "submitted_by": OWNER, "version": 2}

EVIDENCE_VARIANTS: dict[str, Callable[[], dict[str, Any]]] = {
    "evidence_owner_open": lambda: owner_card(RequestRecord(request()), REQUIREMENT, NAMES),
    "evidence_owner_changes_requested": lambda: owner_card(
        RequestRecord(
            request(**{**SUBMITTED, "status": "changes_requested", "version": 3}),
            (SUBMISSION,),
            (decision("request_changes", SAM, "Add the sign-off"),),
        ),
        REQUIREMENT,
        NAMES,
    ),
    "evidence_reviewers_one_of_two_notice": lambda: reviewers_card(
        RequestRecord(
            request(**{**SUBMITTED, "version": 3}), (SUBMISSION,), (decision("approve", RITA),)
        ),
        REQUIREMENT,
        NAMES,
        notice="You already approved this evidence; each reviewer counts once.",
    ),
    "evidence_reviewers_approved": lambda: reviewers_card(
        RequestRecord(
            request(**{**SUBMITTED, "status": "approved", "version": 4}),
            (SUBMISSION,),
            (decision("approve", RITA), decision("approve", SAM)),
        ),
        REQUIREMENT,
        NAMES,
    ),
    "evidence_owner_policy_cis_costs": lambda: owner_card(
        RequestRecord(request(**POLICY_RESOURCES)),
        REQUIREMENT,
        NAMES,
        resources=resource_facts(),
    ),
    "evidence_reviewers_policy_cis_costs": lambda: reviewers_card(
        RequestRecord(request(**{**SUBMITTED, **POLICY_RESOURCES}), (SUBMISSION,)),
        REQUIREMENT,
        NAMES,
        resources=resource_facts(),
    ),
    "evidence_requested_already_open": lambda: requested_card(
        request(), REQUIREMENT, NAMES, created=False
    ),
}
"""Evidence card variants by golden file name."""
