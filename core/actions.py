"""The data contracts of card actions: what each button may send, and nothing more.

Action data comes from a client and is never trusted to carry identity (the acting user,
tenant and conversation come from the authenticated activity). Unknown fields are refused,
so a crafted payload cannot set what the button does not offer (no mass assignment).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.models import Severity
from core.triage import CLOSING_CHOICES


class RefreshData(BaseModel):
    """What a *Refresh* button sends: the incident's key, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident: str = Field(min_length=1, max_length=1024)


class BudgetData(BaseModel):
    """What a budget alert card's buttons send: the alert's key, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert: str = Field(min_length=1, max_length=768)


_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class TriageData(BaseModel):
    """What every triage button sends: the incident and the version its card showed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident: str = Field(min_length=1, max_length=1024)
    version: str = Field(min_length=1, max_length=256)


class AssignData(TriageData):
    """*Assign to…*: the person picked (an Entra object id from Teams' people picker)."""

    assignee: str = Field(pattern=_GUID)


class SeverityData(TriageData):
    """*Severity…*: the new severity."""

    severity: Severity


class StatusData(TriageData):
    """*Activate* / *Reopen*: the only status a button may set without closing."""

    status: Literal["Active"]


class CloseData(TriageData):
    """*Close…*: classification with its reason (one choice), and why, in words."""

    classification: str = Field(min_length=1, max_length=64)
    comment: str = Field(max_length=3000)

    @field_validator("classification")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CLOSING_CHOICES:
            raise ValueError("unknown classification")
        return value

    @field_validator("comment")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("closing needs a comment")
        return value.strip()


class CommentData(TriageData):
    """*Comment…*: the text."""

    comment: str = Field(max_length=3000)

    @field_validator("comment")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a comment needs some text")
        return value.strip()


class RetryData(BaseModel):
    """*Try again* on an action that was not applied: the incident and the action's id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident: str = Field(min_length=1, max_length=1024)
    action: str = Field(min_length=1, max_length=64)


RECORD_NUMBER = re.compile(r"[A-Z]{2,4}[0-9]{7,12}|[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,9}")
"""What a record number looks like: a prefix (CHG, INC, …) and its digits, or a Jira issue
key (SEC-123)."""


class LinkData(TriageData):
    """*Link to ServiceNow…*: a record number typed (``record``) or picked from the typeahead
    search (``pick``, where the client has one); the typed one wins when both are given."""

    record: str = Field("", max_length=40)
    pick: str = Field("", max_length=40)

    @model_validator(mode="after")
    def _number(self) -> LinkData:
        number = (self.record.strip() or self.pick.strip()).upper()
        if not RECORD_NUMBER.fullmatch(number):
            raise ValueError("give a record number, e.g. CHG0030001")
        object.__setattr__(self, "record", number)
        return self


ATTESTATION_LIMIT = 4000
"""The longest attestation text an owner may type."""


class EvidenceData(BaseModel):
    """What every evidence button sends: the request and the ``version`` its card showed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)


class EvidenceSubmitData(EvidenceData):
    """*Submit* on the owner's card: a link (https only) or an attestation text."""

    kind: Literal["link", "attestation"]
    link: str | None = Field(None, max_length=2048)
    attestation: str | None = Field(None, max_length=ATTESTATION_LIMIT)

    @field_validator("link")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        link = value.strip()
        if not HTTPS_URL.fullmatch(link):
            raise ValueError("a link must be an https:// address")
        return link

    @model_validator(mode="after")
    def _given(self) -> EvidenceSubmitData:
        if self.kind == "link" and self.link is None:
            raise ValueError("give the link to the evidence")
        if self.kind == "attestation" and not (self.attestation and self.attestation.strip()):
            raise ValueError("write the attestation")
        return self


HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?")
"""An absolute https address with a host, and no white space."""


class EvidenceRejectData(EvidenceData):
    """*Reject* on the reviewers' card: why, in words."""

    reason: str = Field(max_length=ATTESTATION_LIMIT)

    @field_validator("reason")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a rejection needs a reason")
        return value.strip()


class EvidenceChangesData(EvidenceData):
    """*Request changes* on the reviewers' card: what the owner should change."""

    comment: str = Field(max_length=ATTESTATION_LIMIT)

    @field_validator("comment")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say what should change")
        return value.strip()
