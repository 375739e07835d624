"""Async client of Azure Policy Insights' policy states (ARM, api-version 2024-10-01).

Calls go through the injected ``httpx.AsyncClient`` (``connectors.http.resilient_client``)
with explicit timeouts and an ARM bearer token, as for every ARM client
(``connectors.arm_client``); answers become
``core.policy_states.PolicyState`` (``mapping``), failures typed errors (``errors``).
``queryResults`` is a POST that only reads, so it is sent as idempotent (the layer may
retry it); its pages follow ``@odata.nextLink`` with a POST again. ``assignments_of`` reads
which assignments evaluate a resource under a policy definition (what an attestation needs
when a requirement names only the definition). ``attest`` PUTs an
attestation (api-version 2024-10-01, shape from azure-rest-api-specs' attestations.json).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from connectors.arm_client import ARM_ENDPOINT as ARM_ENDPOINT
from connectors.arm_client import ArmClient
from connectors.policy.errors import ERRORS, PolicyInsightsError
from connectors.policy.mapping import (
    attestation_body,
    attestation_from_resource,
    policy_state_from_record,
)
from connectors.policy.query import states_query
from core.errors import InvalidPayload, Outcome
from core.policy_states import Attestation, AttestationRequest, ComplianceState, PolicyState

log = logging.getLogger(__name__)

API_VERSION = "2024-10-01"
"""The Policy Insights api-version this client speaks (the swagger in ``contracts/``)."""

_PROVIDER = "/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
_ATTESTATIONS = "/providers/Microsoft.PolicyInsights/attestations"
_SCOPE = re.compile(
    r"^/subscriptions/(?P<sub>[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})"
    r"(/resourceGroups/(?P<rg>[-\w._()]{1,90}))?/?$",
    re.IGNORECASE,
)


def scope_path(scope: str) -> str:
    """The ARM path of a subscription or resource group scope; ``ValueError`` otherwise.

    Accepts ``/subscriptions/{id}`` and ``/subscriptions/{id}/resourceGroups/{name}``.
    """
    found = _SCOPE.match(scope.strip())
    if found is None or (found["rg"] or "").endswith("."):
        raise ValueError(f"{scope!r} is not a subscription or resource group scope")
    path = f"/subscriptions/{found['sub']}"
    return path + (f"/resourceGroups/{quote(found['rg'], safe='')}" if found["rg"] else "")


def resource_path(resource_id: str) -> str:
    """The ARM path of a resource id, each segment percent-encoded; ``ValueError`` if bad."""
    parts = resource_id.strip().strip("/").split("/")
    if (
        len(parts) < 2
        or parts[0].lower() != "subscriptions"
        or any(not part or part in (".", "..") for part in parts)
    ):
        raise ValueError(f"{resource_id!r} is not an ARM resource id")
    return "/" + "/".join(quote(part, safe="") for part in parts)


class PolicyInsightsClient(ArmClient[PolicyInsightsError]):
    """Reads the latest policy states of a subscription, resource group or resource.

    The caller owns (and closes) ``http`` and ``credential``. The ARM token is kept until
    5 minutes before it expires. Every call is sent as idempotent: the POSTs only read and
    the PUT names its attestation.
    """

    api_version = API_VERSION
    errors = ERRORS

    def non_compliant(
        self,
        scope: str,
        *,
        policy_definition_id: str | None = None,
        policy_assignment_id: str | None = None,
        top: int | None = None,
    ) -> AsyncIterator[PolicyState]:
        """Every latest NonCompliant record in ``scope``, page after page as the caller reads.

        ``scope`` is ``/subscriptions/{id}`` or ``.../resourceGroups/{name}``; the optional
        ids narrow to one policy definition or assignment. ``top`` (1..1000) caps the records
        returned in all (the swagger's "maximum number of records to return"), not a page.
        ``ValueError`` before any request for a bad scope or ``top``; an unreadable record
        is logged and skipped.
        """
        query = states_query(
            compliance_state=ComplianceState.NON_COMPLIANT.value,
            policy_definition_id=policy_definition_id,
            policy_assignment_id=policy_assignment_id,
            top=top,
        )
        return self._walk(f"{self._base_url}{scope_path(scope)}{_PROVIDER}", query)

    async def compliance_of(
        self,
        resource_id: str,
        policy_assignment_id: str,
        *,
        definition_reference_id: str | None = None,
    ) -> PolicyState | None:
        """The latest state of one resource under one assignment; None if it has none.

        None means the assignment no longer evaluates the resource (it was deleted, moved
        out of scope, or the assignment removed). For an initiative, pass the policy's
        ``definition_reference_id``; without it, a non-compliant record wins over others.
        """
        url = f"{self._base_url}{resource_path(resource_id)}{_PROVIDER}"
        query = states_query(policy_assignment_id=policy_assignment_id)
        found = [state async for state in self._walk(url, query)]
        if definition_reference_id is not None:
            wanted = definition_reference_id.lower()
            found = [s for s in found if (s.definition_reference_id or "").lower() == wanted]
        failing = [s for s in found if not s.is_compliant]
        chosen = failing or found
        return chosen[0] if chosen else None

    async def assignments_of(
        self, resource_id: str, policy_definition_id: str
    ) -> list[PolicyState]:
        """The latest record of each assignment that evaluates the resource under a definition.

        One record per distinct (assignment, definition reference id), in any compliance
        state (a manual policy reports ``Unknown`` until attested); for an initiative the
        record's ``definition_reference_id`` names the definition inside it. Records of
        other resources (a scope's children) are left out; an empty list means no
        assignment of the definition evaluates the resource any more.
        """
        url = f"{self._base_url}{resource_path(resource_id)}{_PROVIDER}"
        query = states_query(policy_definition_id=policy_definition_id)
        wanted = resource_id.strip().rstrip("/").lower()
        found: dict[tuple[str, str], PolicyState] = {}
        async for state in self._walk(url, query):
            if state.resource_id.rstrip("/").lower() != wanted:
                continue
            key = (
                state.policy_assignment_id.lower(),
                (state.definition_reference_id or "").lower(),
            )
            found.setdefault(key, state)
        return list(found.values())

    async def attest(
        self, scope: str, request: AttestationRequest, *, name: str | None = None
    ) -> Attestation:
        """Create or replace the attestation ``name`` (a new GUID unless given) on ``scope``.

        ``scope`` is a resource id, or a subscription or resource group. The PUT is
        idempotent: sent again with the same name (a retry, an outbox job run twice) it
        leaves one attestation. Azure Policy applies it to the scope's manual policies.
        """
        attestation = quote(name or str(uuid.uuid4()), safe="")
        if attestation in ("", ".", ".."):
            raise ValueError("an attestation needs a name")
        url = f"{self._base_url}{resource_path(scope)}{_ATTESTATIONS}/{attestation}"
        body = attestation_body(request)
        answer = await self._call("PUT", url, params=self._api, body=body, idempotent=True)
        try:
            return attestation_from_resource(answer)
        except InvalidPayload as exc:
            raise ERRORS.invalid_answer(
                f"unreadable attestation: {exc}", outcome=Outcome.FAIL
            ) from exc

    async def _walk(self, url: str, query: dict[str, str]) -> AsyncIterator[PolicyState]:
        """The mapped records of a queryResults POST, along ``@odata.nextLink``."""
        params = {**self._api, **query}
        pages = self._pages("POST", url, params, link="@odata.nextLink", idempotent=True)
        async for records in pages:
            for record in records:
                state = _mapped(record)
                if state is not None:
                    yield state


def _mapped(record: Any) -> PolicyState | None:
    """A record's ``PolicyState``; one Warden cannot read is logged (id, field) and None."""
    try:
        return policy_state_from_record(record)
    except InvalidPayload as exc:
        where = record.get("resourceId") if isinstance(record, dict) else None
        log.warning("skipping an unreadable policy state of %s (field %s)", where, exc.field)
        return None
