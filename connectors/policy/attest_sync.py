"""The ``policy.attest`` outbox job: an approved policy request becomes Azure Policy attestations.

For the request named by the job, once it is approved, one attestation is PUT per covered
resource (the request's resources, else its scope) and per policy assignment of its
requirement: ``complianceState: Compliant``, comments naming the requirement, the request and
its approvers, one ``evidence`` entry whose ``sourceUri`` is the SharePoint web URL of the
approved submission (the link handed in while it is not filed) and whose description carries
the evidence's SHA-256, ``assessmentDate`` = the approval, and ``expiresOn`` = the request's
due date + ``core.posture.ATTESTATION_VALIDITY``. A requirement naming only policy
definitions gets no attestation (Azure Policy needs an assignment id).

The attestation name is derived from (request, assignment, resource), so a job run twice, or
retried half-way, replaces the same attestations. Failures are the client's typed errors:
5xx and 429 are retried by the outbox, any other 4xx quarantines the job with the service's
reason; a resource id Azure cannot take quarantines it too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from connectors.policy.client import PolicyInsightsClient
from connectors.sentinel.connection import SentinelConnection
from core.breaker import Breakers
from core.catalog import Catalog, Requirement
from core.errors import DeliveryError, Outcome
from core.evidence import DecisionKind, RequestStatus
from core.policy_states import AttestationRequest, AttestationState, Evidence
from core.posture import attestation_expiry
from core.settings import Settings
from core.store import evidence as evidence_store
from core.store.evidence import RequestRecord
from core.store.evidence_cards import names_of
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6d1f4f0e-4f57-4c55-9a43-77617264656e")  # Warden's attestation names


def attestation_name(request_id: str, assignment_id: str, resource_id: str) -> str:
    """The attestation's name: the same (request, assignment, resource) always gives the same
    one (ARM ids compare case-blind, so they are lower-cased first)."""
    key = "|".join((request_id, assignment_id.lower(), resource_id.lower()))
    return f"warden-{uuid.uuid5(_NAMESPACE, key)}"


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
        bodies = await self.attestations(record, requirement)
        resources = request.resources or (request.scope,)
        for resource in resources:
            for body in bodies:
                name = attestation_name(request.id, body.policy_assignment_id, resource)
                try:
                    await self._client.attest(resource, body, name=name)
                except ValueError as exc:
                    raise DeliveryError(str(exc), outcome=Outcome.FAIL) from exc
        log.info(
            "request %s attested: %d resource(s) x %d assignment(s)",
            request.id,
            len(resources),
            len(bodies),
        )

    async def attestations(
        self, record: RequestRecord, requirement: Requirement
    ) -> list[AttestationRequest]:
        """The attestation bodies of an approved request, one per assignment of the
        requirement (none when it names only definitions)."""
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
        return [
            AttestationRequest(
                policy_assignment_id=assignment,
                compliance_state=AttestationState.COMPLIANT,
                evidence=(Evidence(description=described, source_uri=source),),
                comments=comments,
                assessment_date=assessed,
                expires_on=attestation_expiry(request.due),
            )
            for assignment in requirement.policy_assignments
        ]


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
