"""Deprovisioning through SCIM hands the leaver's pending evidence requests on, audited."""

from __future__ import annotations

from datetime import date

from app import STORE
from core.audit_chain import AuditAction
from core.evidence import WARDEN, RequestDraft, RequestSource
from core.store import evidence as evidence_store
from core.store import evidence_audit
from tests.integration.conftest import WardenFactory
from tests.integration.scim_support import Scim, scim_warden

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DISABLE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
}


async def _request_owned_by(scim: Scim, owner: str, requirement: str = "ISO27001-A.5.1") -> str:
    draft = RequestDraft(
        requirement_id=requirement,
        period="2026-Q4",
        owner=owner,
        requested_by="reviewer@contoso.com",
        source=RequestSource.CHAT,
        due=date(2026, 12, 10),
        approvals_needed=1,
    )
    request, created = await evidence_store.open_request(scim.warden.client.app[STORE], draft)
    assert created
    return request.id


async def _owner(scim: Scim, request_id: str) -> str:
    request = await evidence_store.get(scim.warden.client.app[STORE], request_id)
    assert request is not None
    return request.owner


async def test_scim_leaver_disabled_requests_move_to_manager(start_warden: WardenFactory) -> None:
    """``active "False"`` moves the leaver's open request to their manager, with an audit entry."""
    scim = await scim_warden(start_warden)
    boss = await scim.user("boss@contoso.com")
    leaver = await scim.user(
        "Leaver@contoso.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}}
    )
    request_id = await _request_owned_by(scim, "leaver@contoso.com")
    await scim.ok("PATCH", f"/Users/{leaver['id']}", DISABLE)
    assert await _owner(scim, request_id) == "boss@contoso.com"
    entries = await evidence_audit.audit_entries(scim.warden.client.app[STORE])
    moved = [e for e in entries if e.action is AuditAction.REASSIGNED]
    assert len(moved) == 1 and moved[0].actor == WARDEN
    assert moved[0].details["from"] == "leaver@contoso.com"
    assert moved[0].details["to"] == "boss@contoso.com"


async def test_scim_leaver_without_manager_requests_move_to_group(
    start_warden: WardenFactory,
) -> None:
    """With no manager, the request goes to the leaver's group (its Entra object id)."""
    scim = await scim_warden(start_warden)
    leaver = await scim.user("solo@contoso.com", externalId="oid-solo")
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Compliance Owners",
        "externalId": "group-oid",
        "members": [{"value": leaver["id"]}],
    }
    await scim.ok("POST", "/Groups", group, 201)
    request_id = await _request_owned_by(scim, "oid-solo")
    await scim.ok("PATCH", f"/Users/{leaver['id']}", DISABLE)
    assert await _owner(scim, request_id) == "group-oid"


async def test_scim_leaver_deleted_requests_move_and_other_owners_untouched(
    start_warden: WardenFactory,
) -> None:
    """Deleting an active person moves their request; a colleague's request stays theirs."""
    scim = await scim_warden(start_warden)
    boss = await scim.user("boss@contoso.com")
    leaver = await scim.user("gone@contoso.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    theirs = await _request_owned_by(scim, "gone@contoso.com")
    colleague = await _request_owned_by(scim, "stays@contoso.com", "ISO27001-A.5.2")
    assert await scim.ok("DELETE", f"/Users/{leaver['id']}", status=204) is None
    assert await _owner(scim, theirs) == "boss@contoso.com"
    assert await _owner(scim, colleague) == "stays@contoso.com"
    gone = await scim.ok("GET", '/Users?filter=userName eq "gone@contoso.com"')
    assert gone["totalResults"] == 0
