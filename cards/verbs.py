"""The verbs of Warden's card actions (``Action.Execute``), in one enum.

Bot handlers register by :class:`CardVerb`, never by a bare string, so a verb cannot be
misspelled in one place and missed in another. An invoke whose verb is not a member (unknown,
or stale: a card drawn by an older Warden) is answered with an explicit error card
(:func:`cards.common.error_card`), never a silent failure or a 500.

Renaming a member's value strands every card already posted with the old value; add a member
instead, and keep accepting the old verb until those cards have been refreshed.
"""

from __future__ import annotations

from enum import StrEnum


class CardVerb(StrEnum):
    """An ``Action.Execute`` verb that Warden's cards send and its bot handles."""

    REFRESH = "incident.refresh"
    """Redraw an incident card from the latest stored version of the incident."""

    ASSIGN_ME = "incident.assign_me"
    """Make the person who clicked the incident's owner."""

    ASSIGN = "incident.assign"
    """Make the person picked (``assignee``, an Entra object id) the incident's owner."""

    SEVERITY = "incident.severity"
    """Change the incident's severity (``severity``)."""

    STATUS = "incident.status"
    """Activate a new incident, or reopen a closed one."""

    CLOSE = "incident.close"
    """Close the incident (``classification``, with its reason, and ``comment``)."""

    COMMENT = "incident.comment"
    """Add a comment (``comment``) to the incident."""

    DETAILS = "incident.details"
    """Show the incident's first alerts and entities on the card."""

    RETRY = "incident.retry"
    """Ask again for a triage change that was not applied (``action``: its intent id)."""

    LINK = "incident.link"
    """Link the incident to an ITSM record (``record``: its number, e.g. CHG0030001)."""

    CREATE_CHANGE = "incident.create_change"
    """Create a ServiceNow change request from the incident, and link it."""

    EVIDENCE_SUBMIT = "evidence.submit"
    """Hand in evidence for a request (``kind``: ``link`` with ``link``, or ``attestation``)."""

    EVIDENCE_APPROVE = "evidence.approve"
    """Approve the evidence the reviewers' card shows."""

    EVIDENCE_REJECT = "evidence.reject"
    """Reject the evidence (``reason`` required)."""

    EVIDENCE_REQUEST_CHANGES = "evidence.request_changes"
    """Send the evidence back to its owner (``comment`` required)."""

    EVIDENCE_ATTACH_FILE = "evidence.attach_file"
    """Hand in a file attached in chat for the request picked (``upload``, ``request``)."""

    BUDGET_ACKNOWLEDGE = "budget.acknowledge"
    """Record that the person who clicked has seen the budget alert (``alert``: its key)."""

    BUDGET_OPEN_CHANGE = "budget.open_change"
    """Open a change for the budget alert in the connected ITSM system (``alert``: its key)."""

    @classmethod
    def parse(cls, verb: str | None) -> CardVerb | None:
        """The member whose value is exactly ``verb``; ``None`` for an unknown or missing verb."""
        for member in cls:
            if member.value == verb:
                return member
        return None
