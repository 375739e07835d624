"""The ``policy.attest`` outbox job: an approved policy request becomes Azure Policy attestations.

For the request named by the job, once it is approved, one attestation is PUT per covered
resource (the request's resources, else its scope) and per policy assignment that covers it:
``complianceState: Compliant``, comments naming the requirement, the request and its
approvers, one ``evidence`` entry whose ``sourceUri`` is the SharePoint web URL of the
approved submission (the link handed in while it is not filed) and whose description carries
the evidence's SHA-256, ``assessmentDate`` = the approval, and ``expiresOn`` = the request's
due date + ``core.posture.ATTESTATION_VALIDITY``.

The assignments are those the requirement names, plus, for each policy definition it names,
the assignments that evaluate the resource under that definition today (Policy Insights'
latest states of the resource, any compliance state: a manual policy reports ``Unknown``
until attested). An attestation needs an assignment id, and catalogs usually name the
built-in definition that is assigned at several scopes. When such an assignment is an
initiative, the attestation names the policy's ``policyDefinitionReferenceId`` so that it
sets the state of that policy only, not of the whole set. A resource that no assignment
evaluates any more (or that Azure no longer knows) gets no attestation, which is logged; a
request with none at all ends the job with a log line, not an error.

The attestation name is derived from (request, assignment, resource[, reference id]), so a
job run twice, or retried half-way, replaces the same attestations. Failures are the
client's typed errors: 5xx and 429 are retried by the outbox, any other 4xx quarantines the
job with the service's reason; a resource id Azure cannot take quarantines it too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from connectors.policy.client import PolicyInsightsClient
from connectors.policy.errors import PolicyNotFound
from connectors.sentinel.connection import SentinelConnection
from core.breaker import Breakers
from core.catalog import Catalog, Requirement
from core.errors import DeliveryError, Outcome
from core.evidence import DecisionKind, RequestStatus
from core.policy_states import AttestationRequest, AttestationState, Evidence, PolicyState
from core.posture import attestation_expiry
from core.settings import Settings
from core.store import evidence as evidence_store
from core.store import evidence_filing
from core.store.evidence import RequestRecord
from core.store.evidence_cards import names_of
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6d1f4f0e-4f57-4c55-9a43-77617264656e")  # Warden's attestation names


def attestation_name(
    request_id: str, assignment_id: str, resource_id: str, reference_id: str | None = None
) -> str:
    """The attestation's name: the same (request, assignment, resource[, initiative reference
    id]) always gives the same one (ARM ids compare case-blind, so they are lower-cased)."""
    parts = [request_id, assignment_id.lower(), resource_id.lower()]
    if reference_id:
        parts.append(reference_id.lower())
    return f"warden-{uuid.uuid5(_NAMESPACE, '|'.join(parts))}"


@dataclass(frozen=True)
class Target:
    """One assignment to attest a resource under (and, for an initiative, which policy)."""

    assignment_id: str
    reference_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The target's identity (ARM ids compare case-blind)."""
        return self.assignment_id.lower(), (self.reference_id or "").lower()


@dataclass(frozen=True)
class Statement:
    """What the attestations of one approved request say: the evidence, who approved, when."""

    evidence: Evidence
    comments: str
    assessed: datetime
    expires: datetime

    def attestation(self, target: Target) -> AttestationRequest:
        """The ``Compliant`` attestation of this statement under ``target``."""
        return AttestationRequest(
            policy_assignment_id=target.assignment_id,
            definition_reference_id=target.reference_id,
            compliance_state=AttestationState.COMPLIANT,
            evidence=(self.evidence,),
            comments=self.comments,
            assessment_date=self.assessed,
            expires_on=self.expires,
        )


class PolicyAttestation:
    """Writes the attestations of one approved policy request (the ``policy.attest`` job)."""

    def __init__(self, client: PolicyInsightsClient, store: Store, catalog: Catalog) -> None:
        """Attest through ``client``; requests are read from ``store``, requirements from
        ``catalog``."""
        self._client = client
        self._store = store
        self._catalog = catalog

    async def __call__(self, job: Job) -> None:
        """PUT every attestation of the job's request; a repeat replaces the same ones."""
        request_id = job.payload.get("request")
        record = await evidence_store.record(self._store, str(request_id))
        if record is None:
            raise DeliveryError(f"no evidence request {request_id}", outcome=Outcome.GONE)
        request = record.request
        if request.status is not RequestStatus.APPROVED:
            log.info("request %s is %s: nothing to attest", request.id, request.status.value)
            return
        requirement = self._catalog.get(request.requirement_id)
        if requirement is None:
            message = f"requirement {request.requirement_id} is not in the catalog"
            raise DeliveryError(message, outcome=Outcome.FAIL)
        said = await self.statement(record, requirement)
        resources = request.resources or (request.scope,)
        written = 0
        for resource in resources:
            for target in await self.targets(requirement, resource):
                await self._attest(request.id, resource, said.attestation(target), target)
                written += 1
        log.info(
            "request %s attested: %d attestation(s) over %d resource(s)",
            request.id,
            written,
            len(resources),
        )
        if written:
            details: dict[str, JsonValue] = {
                "submission": request.submission,
                "attestations": written,
                "resources": len(resources),
            }
            await evidence_filing.record_written_back(
                self._store, request.id, "azure-policy", details
            )

    async def targets(self, requirement: Requirement, resource: str) -> list[Target]:
        """The assignments to attest ``resource`` under: the requirement's own, then those
        evaluating it under each of its definitions (an assignment it names is attested
        whole, so it is not repeated per policy)."""
        found = {t.key: t for t in (Target(a) for a in requirement.policy_assignments)}
        named = {assignment for assignment, _ in found}
        for definition in requirement.policy_definitions:
            for state in await self._evaluating(resource, definition):
                target = Target(state.policy_assignment_id, state.definition_reference_id)
                if target.assignment_id.lower() not in named:
                    found.setdefault(target.key, target)
        if not found:
            log.info(
                "no assignment of %s evaluates %s: nothing to attest", requirement.id, resource
            )
        return list(found.values())

    async def _evaluating(self, resource: str, definition: str) -> list[PolicyState]:
        """The states of the assignments evaluating ``resource`` under ``definition``; none
        when Azure no longer knows the resource (404)."""
        try:
            return await self._client.assignments_of(resource, definition)
        except PolicyNotFound:
            log.info("Azure Policy does not know %s any more: nothing to attest", resource)
            return []
        except ValueError as exc:
            raise DeliveryError(str(exc), outcome=Outcome.FAIL) from exc

    async def _attest(
        self, request_id: str, resource: str, body: AttestationRequest, target: Target
    ) -> None:
        """PUT one attestation of ``body`` for ``resource`` under ``target``."""
        name = attestation_name(request_id, target.assignment_id, resource, target.reference_id)
        try:
            await self._client.attest(resource, body, name=name)
        except ValueError as exc:
            raise DeliveryError(str(exc), outcome=Outcome.FAIL) from exc

    async def statement(self, record: RequestRecord, requirement: Requirement) -> Statement:
        """What every attestation of an approved request says, whatever its assignment."""
        request = record.request
        decisions = [d for d in record.decisions if d.submission == request.submission]
        approvers = [d.by for d in decisions if d.kind is DecisionKind.APPROVE]
        names = await names_of(self._store, approvers)
        approved_by = ", ".join(dict.fromkeys(names.get(a.casefold(), a) for a in approvers))
        current = [s for s in record.submissions if s.version == request.submission]
        if not current:
            message = f"approved request {request.id} has no submission {request.submission}"
            raise DeliveryError(message, outcome=Outcome.FAIL)
        submission = current[-1]
        described = f"{requirement.id} evidence ({submission.file_name or submission.kind.value})"
        if submission.sha256:
            described += f", SHA-256 {submission.sha256}"
        assessed: datetime = decisions[-1].at if decisions else request.updated_at
        source = submission.web_url or submission.url
        comments = (
            f"{requirement.id} ({requirement.title}): evidence request {request.id} "
            f"approved in Warden by {approved_by or request.updated_by}."
        )
        return Statement(
            evidence=Evidence(description=described, source_uri=source),
            comments=comments,
            assessed=assessed,
            expires=attestation_expiry(request.due),
        )


Closer = Callable[[], Awaitable[None]]
"""Releases what a handler opened (its own ARM connection)."""


def attestation_handler(
    settings: Settings,
    store: Store,
    catalog: Catalog,
    breakers: Breakers,
    connection: SentinelConnection | None,
) -> tuple[PolicyAttestation, Closer | None]:
    """The job's handler on the app's ARM ``connection``, or on one opened here (returned
    with its closer)."""
    arm = connection or SentinelConnection.from_settings(settings, breakers)
    client = PolicyInsightsClient(arm.http, arm.credential, base_url=settings.arm_endpoint)
    return PolicyAttestation(client, store, catalog), None if connection else arm.aclose
