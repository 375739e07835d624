"""Evidence request cards: the owner's (hand in evidence) and the reviewers' (decide on it).

Pure functions of a stored request (:class:`core.store.evidence.RequestRecord`), its
catalog :class:`~core.catalog.Requirement` and the display names known for the people on it.
Every button carries the request id and the ``version`` the card shows, so a click on an
older card is refused by the domain and answered with the card as it stands. Text a person
typed (attestations, reasons, names) passes through :func:`cards.text.inert`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cards.elements import (
    JSON,
    adaptive_card,
    container,
    execute,
    fact_set,
    open_url,
    rich_text,
    safe_url,
    text_block,
)
from cards.resources import ResourceFacts, listed_resources, resource_rows
from cards.text import inert, localized, shorten
from cards.verbs import CardVerb
from core.actions import ATTESTATION_LIMIT
from core.catalog import EvidenceKind, Requirement
from core.evidence import DecisionKind, EvidenceRequest, RequestStatus, Submission, approvers
from core.store.evidence import RequestRecord

Names = Mapping[str, str]
"""Display names by lower-cased person id (Entra object id or UPN)."""

STATUS_WORDS = {
    RequestStatus.OPEN: ("Waiting for evidence", "accent"),
    RequestStatus.SUBMITTED: ("Waiting for review", "warning"),
    RequestStatus.CHANGES_REQUESTED: ("Changes requested", "warning"),
    RequestStatus.APPROVED: ("Approved", "good"),
    RequestStatus.REJECTED: ("Rejected", "attention"),
    RequestStatus.RESOLVED_BY_POLICY: ("Resolved by policy", "good"),
    RequestStatus.CANCELLED: ("Cancelled", "default"),
}
"""How each status reads on a card, and its colour."""

PREVIEW_LINES = 3
"""How many lines of an attestation the reviewers' card shows."""


def person(names: Names, person_id: str) -> str:
    """The display name of ``person_id`` when known, else the id itself (made inert)."""
    return inert(names.get(person_id.strip().casefold()) or person_id)


def people_on(record: RequestRecord) -> list[str]:
    """Every person id a card of ``record`` may name (to look their names up)."""
    request = record.request
    return [
        request.owner,
        request.requested_by,
        *(s.submitted_by for s in record.submissions),
        *(d.by for d in record.decisions),
    ]


def owner_card(
    record: RequestRecord,
    requirement: Requirement,
    names: Names,
    *,
    notice: str | None = None,
    resources: ResourceFacts | None = None,
) -> JSON:
    """The owner's card: what is asked, by when, and (while awaited) two ways to answer.

    It mentions the owner (a Teams ``msteams.entities`` mention) and, after a change request,
    shows the reviewer's comment above the inputs for the next version. ``resources``: the
    Azure CIs and costs known of the non-compliant resources (:mod:`cards.resources`).
    """
    request = record.request
    owner = person(names, request.owner)
    body: list[JSON] = _notice(notice)
    body += [
        text_block(
            f"Evidence requested: {inert(requirement.title)}", size="large", weight="bolder"
        ),
        text_block(f"<at>{owner}</at>, please hand in evidence for this requirement."),
        _status_line(request),
        fact_set(_request_facts(request, names)),
        rich_text(inert(requirement.guidance), spacing="medium"),
    ]
    body += listed_resources(request.resources) + resource_rows(request.resources, resources)
    body += _history(record, names)
    actions = _answers(request, requirement) if request.status.awaiting_evidence else []
    return _mentioning(adaptive_card(body, actions), [(request.owner, owner)])


def reviewers_card(
    record: RequestRecord,
    requirement: Requirement,
    names: Names,
    *,
    notice: str | None = None,
    resources: ResourceFacts | None = None,
) -> JSON:
    """The reviewers' card: the current evidence, its SHA-256, approvals so far, the verdicts;
    with ``resources``, the Azure CIs and costs known of the non-compliant resources."""
    request = record.request
    body: list[JSON] = _notice(notice)
    body += [
        text_block(
            f"Evidence to review: {inert(requirement.title)}", size="large", weight="bolder"
        ),
        _status_line(request),
        fact_set(_request_facts(request, names)),
        *resource_rows(request.resources, resources),
    ]
    current = _current(record)
    if current is not None:
        body += _evidence_summary(current, names)
    approved = approvers(request, record.decisions)
    tally = f"Approvals: {len(approved)} of {request.approvals_needed}"
    if approved:
        tally += " (" + ", ".join(person(names, a) for a in approved) + ")"
    body.append(text_block(tally, weight="bolder", spacing="medium"))
    body += _history(record, names)
    actions = _verdicts(request) if request.status is RequestStatus.SUBMITTED else []
    return adaptive_card(body, actions)


def requested_card(
    request: EvidenceRequest, requirement: Requirement, names: Names, *, created: bool
) -> JSON:
    """The answer to ``request evidence``: opened now, or already open (and where it stands)."""
    owner = person(names, request.owner)
    title = "Evidence requested" if created else "That request is already open"
    line = (
        f"I asked {owner} for evidence; their card follows."
        if created
        else f"{owner} already has an open request for this evidence: its card is above."
    )
    items = [
        text_block(title, weight="bolder", color="good" if created else "warning"),
        text_block(f"{inert(requirement.id)}: {inert(requirement.title)}"),
        text_block(line),
        _status_line(request),
        fact_set(_request_facts(request, names)),
    ]
    return adaptive_card([container(items)])


def reminder_card(
    request: EvidenceRequest, requirement: Requirement, names: Names, wording: str
) -> JSON:
    """A short reminder for the owner (mentioned): the requirement, its due date, and
    ``wording`` ("due in 7 days", "due today", "overdue")."""
    owner = person(names, request.owner)
    color = "attention" if wording == "overdue" else "warning"
    body = [
        text_block(f"Reminder: evidence {inert(wording)}", weight="bolder", color=color),
        text_block(
            f"{mention_text(owner)}, the evidence for {inert(requirement.title)} is "
            f"{inert(wording)}."
        ),
        fact_set(
            [("Requirement", inert(request.requirement_id)), ("Due", request.due.isoformat())]
        ),
    ]
    return _mentioning(adaptive_card(body), [(request.owner, owner)])


def escalation_card(
    request: EvidenceRequest,
    requirement: Requirement,
    names: Names,
    manager: tuple[str, str] | None = None,
) -> JSON:
    """The escalation of overdue evidence: to the owner's ``manager`` (id, name; mentioned)
    or, without one, to whoever reads the escalation channel. The owner is mentioned too."""
    owner = person(names, request.owner)
    people = [(request.owner, owner)]
    lead = f"the evidence {mention_text(owner)} owes for {inert(requirement.title)}"
    if manager is not None:
        people.insert(0, (manager[0], inert(manager[1])))
        line = f"{mention_text(inert(manager[1]))}, {lead} is overdue."
    else:
        line = f"Escalation: {lead} is overdue."
    body = [
        text_block("Overdue evidence", weight="bolder", color="attention"),
        text_block(line),
        fact_set(
            [("Requirement", inert(request.requirement_id)), ("Due", request.due.isoformat())]
        ),
    ]
    return _mentioning(adaptive_card(body), people)


def mention_text(name: str) -> str:
    """The mention text of a person already made inert (``<at>name</at>``)."""
    return f"<at>{name}</at>"


def _mentioning(card: JSON, people: list[tuple[str, str]]) -> JSON:
    """``card`` with a Teams mention entity for each (id, inert name) in ``people``."""
    card["msteams"]["entities"] = [
        {"type": "mention", "text": mention_text(name), "mentioned": {"id": pid, "name": name}}
        for pid, name in people
    ]
    return card


def _notice(notice: str | None) -> list[JSON]:
    if not notice:
        return []
    return [container([text_block(inert(notice), weight="bolder")], style="warning")]


def _status_line(request: EvidenceRequest) -> JSON:
    words, color = STATUS_WORDS[request.status]
    return text_block(words, color=color, weight="bolder", spacing="small")


def _request_facts(request: EvidenceRequest, names: Names) -> list[tuple[str, str]]:
    return [
        ("Requirement", inert(request.requirement_id)),
        ("Owner", person(names, request.owner)),
        ("Due", request.due.isoformat()),
        ("Period", inert(request.period)),
        ("Requested by", person(names, request.requested_by)),
        ("Approvals needed", str(request.approvals_needed)),
    ]


def _current(record: RequestRecord) -> Submission | None:
    number = record.request.submission
    return next((s for s in record.submissions if s.version == number), None)


def _evidence_summary(submission: Submission, names: Names) -> list[JSON]:
    facts = [
        ("Evidence", submission.kind.value),
        ("Version", str(submission.version)),
        ("Submitted by", person(names, submission.submitted_by)),
    ]
    if submission.sha256:
        facts.append(("SHA-256", submission.sha256))
    items: list[JSON] = [
        fact_set(facts, spacing="medium"),
        text_block(f"Submitted {localized(submission.at)}", isSubtle=True, spacing="small"),
    ]
    if submission.kind is EvidenceKind.ATTESTATION and submission.text:
        lines = submission.text.strip().splitlines()[:PREVIEW_LINES]
        items.append(rich_text(shorten(inert(" / ".join(lines)), 400), spacing="small"))
    items += filing_state(submission)
    link = safe_url(submission.url or submission.web_url)
    if link:
        items.append(text_block(inert(link), isSubtle=True, spacing="small"))
        items.append({"type": "ActionSet", "actions": [open_url("Open the evidence", link)]})
    return items


def _history(record: RequestRecord, names: Names) -> list[JSON]:
    """What reviewers said about the current submission that changed its course."""
    request = record.request
    if request.status is RequestStatus.APPROVED:
        by = ", ".join(person(names, a) for a in approvers(request, record.decisions))
        return [text_block(f"Approved by {by}", color="good", weight="bolder")]
    last = record.decisions[-1] if record.decisions else None
    if last is None or last.kind is DecisionKind.APPROVE:
        return []
    if request.status is RequestStatus.REJECTED:
        said = f"Rejected by {person(names, last.by)}: {inert(last.comment)}"
        return [text_block(said, color="attention", weight="bolder")]
    if request.status is RequestStatus.CHANGES_REQUESTED:
        said = f"Changes requested by {person(names, last.by)}: {inert(last.comment)}"
        return [text_block(said, color="warning", weight="bolder")]
    return []


def _stamp(request: EvidenceRequest) -> dict[str, str | int]:
    return {"request": request.id, "version": request.version}


def _answers(request: EvidenceRequest, requirement: Requirement) -> list[JSON]:
    """*Give a link* and *Write an attestation*, as the requirement accepts them."""
    accepted = set(requirement.evidence)
    stamp = _stamp(request)
    next_version = request.submission + 1
    actions: list[JSON] = []
    if EvidenceKind.LINK in accepted:
        link = {
            "type": "Input.Text",
            "id": "link",
            "label": "Link to the evidence (https)",
            "style": "url",
            "isRequired": True,
            "regex": r"^https://\S+$",
            "errorMessage": "Give an https:// link.",
        }
        submit = execute(
            f"Submit link (version {next_version})",
            CardVerb.EVIDENCE_SUBMIT.value,
            {**stamp, "kind": "link"},
        )
        actions.append(_reveal("Give a link", [link], submit))
    if EvidenceKind.ATTESTATION in accepted:
        text = _required_text("attestation", "Attestation", "Write the attestation.")
        submit = execute(
            f"Submit attestation (version {next_version})",
            CardVerb.EVIDENCE_SUBMIT.value,
            {**stamp, "kind": "attestation"},
        )
        actions.append(_reveal("Write an attestation", [text], submit))
    return actions


def _verdicts(request: EvidenceRequest) -> list[JSON]:
    """*Approve*, *Reject* (reason) and *Request changes* (comment)."""
    stamp = _stamp(request)
    reason = _required_text("reason", "Why is it rejected?", "A rejection needs a reason.")
    comment = _required_text("comment", "What should change?", "Say what should change.")
    return [
        execute("Approve", CardVerb.EVIDENCE_APPROVE.value, stamp),
        _reveal("Reject", [reason], execute("Reject", CardVerb.EVIDENCE_REJECT.value, stamp)),
        _reveal(
            "Request changes",
            [comment],
            execute("Send back to the owner", CardVerb.EVIDENCE_REQUEST_CHANGES.value, stamp),
        ),
    ]


def _required_text(input_id: str, label: str, error: str) -> JSON:
    return {
        "type": "Input.Text",
        "id": input_id,
        "label": label,
        "isMultiline": True,
        "maxLength": ATTESTATION_LIMIT,
        "isRequired": True,
        "errorMessage": error,
    }


def _reveal(title: str, inputs: list[JSON], submit: JSON) -> JSON:
    """A button that opens ``inputs`` with their ``submit`` button under the card."""
    inner = adaptive_card(inputs, [submit])
    inner.pop("msteams")
    inner.pop("$schema")
    return {"type": "Action.ShowCard", "title": title, "card": inner}


def filing_state(submission: Submission) -> list[JSON]:
    """*Filed in SharePoint* with a link to the filed copy once it is filed; until then that it
    waits to be (SharePoint slow, down or not set up yet: the evidence is kept meanwhile)."""
    if not submission.item_id:
        return [text_block("Waiting to be filed in SharePoint", isSubtle=True, spacing="small")]
    filed = safe_url(submission.web_url)
    items: list[JSON] = [text_block("Filed in SharePoint", color="good", spacing="small")]
    if filed and submission.url:
        items.append({"type": "ActionSet", "actions": [open_url("Open in SharePoint", filed)]})
    return items


FILE_ATTACH_VERB = CardVerb.EVIDENCE_ATTACH_FILE.value
"""The verb of *Attach to this request* (``CardVerb.EVIDENCE_ATTACH_FILE``)."""


def file_received_card(request: EvidenceRequest, requirement: Requirement, file_name: str) -> JSON:
    """The answer to a file attached in chat that became the request's evidence."""
    items = [
        text_block("Evidence received", weight="bolder", color="good"),
        text_block(f"{inert(requirement.id)}: {inert(requirement.title)}"),
        text_block(
            f"“{inert(file_name)}” is handed in as version {request.submission}. Warden is "
            "filing it in SharePoint; the request's card shows its SHA-256 once it is filed."
        ),
        _status_line(request),
    ]
    return adaptive_card([container(items)])


def file_choice_card(
    file_name: str, upload_id: str, requests: list[tuple[EvidenceRequest, Requirement]]
) -> JSON:
    """Several open requests take a file: pick the one ``file_name`` is for."""
    choices = [
        {
            "title": f"{requirement.id}: {shorten(requirement.title, 80)} "
            f"(due {request.due.isoformat()}, {request.period})",
            "value": request.id,
        }
        for request, requirement in requests
    ]
    picker = {
        "type": "Input.ChoiceSet",
        "id": "request",
        "label": "Which request is it for?",
        "style": "expanded",
        "isRequired": True,
        "errorMessage": "Pick a request.",
        "choices": choices,
    }
    body = [
        text_block("Which request is this file for?", weight="bolder"),
        text_block(f"You have {len(requests)} open requests that take a file as evidence."),
        fact_set([("File", inert(file_name))]),
        picker,
    ]
    attach = execute("Attach to this request", FILE_ATTACH_VERB, {"upload": upload_id})
    return adaptive_card(body, [attach])


def no_file_request_card(file_name: str) -> JSON:
    """A file attached in chat when no open request of the person takes a file."""
    items = [
        text_block("No request is waiting for a file", weight="bolder", color="warning"),
        text_block(
            f"Thanks for “{inert(file_name)}”, but you have no open evidence request that takes "
            "a file, so Warden kept nothing. When someone asks you for evidence, attach the "
            "file here again."
        ),
    ]
    return adaptive_card([container(items)])


def file_in_channel_card() -> JSON:
    """A file attached in a channel or group chat, where Warden cannot take evidence."""
    items = [
        text_block("Attach evidence in your personal chat", weight="bolder", color="warning"),
        text_block(
            "Warden takes evidence files only in a personal chat: attach it in your personal "
            "chat with Warden and it will be filed for your request."
        ),
    ]
    return adaptive_card([container(items)])
