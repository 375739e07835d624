"""Evidence requests and their records: Azure Policy scopes, channels, SharePoint, link hosts.

Flat settings (``WARDEN_<FIELD>``) that ``core.settings.Settings`` inherits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from core.settings.runtime import split_list

SHAREPOINT_SITE = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
    r":/(?P<path>(?:sites|teams)(?:/[^/:?#\s]+)+)"
)
"""``WARDEN_SHAREPOINT_SITE``: a host name, ``:/``, then ``sites/Name`` (or ``teams/Name``)."""
POLICY_SCOPE = re.compile(
    r"/subscriptions/[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"(/resourceGroups/[-\w._()]{0,89}[-\w_()])?/?",
    re.IGNORECASE,
)
"""``WARDEN_POLICY_SCOPES``: a subscription, or a resource group in one."""


class EvidenceFields(BaseModel):
    """Where evidence requests come from, where their cards go and where they are recorded."""

    policy_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated scopes whose Azure Policy non-compliance opens evidence "
        "requests, each `/subscriptions/{id}` or `/subscriptions/{id}/resourceGroups/{name}` "
        "(needs `WARDEN_REQUIREMENTS_FILE`); empty: no policy polling.",
    )
    policy_poll_seconds: float = Field(
        900.0, gt=0, description="Seconds between two reads of Azure Policy non-compliance."
    )
    requirements_file: Path | None = Field(
        None,
        description="YAML catalog of the requirements that need evidence (see "
        "`docs/examples/requirements.yaml`); checked at start, a bad one stops it naming the "
        "line. `python app.py catalog check` shows it.",
    )
    evidence_channel: str | None = Field(
        None,
        description="Conversation id (e.g. `19:…@thread.tacv2`) where the owner's cards of "
        "requests opened from Azure Policy and by campaigns are posted; Warden must be installed "
        "there. "
        "Unset (or unknown to Warden): the requests are opened and audited, no card is posted.",
    )
    auditors_channel: str | None = Field(
        None,
        description="Conversation id of the auditors' channel, where evidence records changed "
        "outside Warden (a file replaced, a column edited, an audit item deleted) are posted as "
        "alert cards; Warden must be installed there. Unset: the changes are audited only.",
    )
    evidence_reminder_seconds: float = Field(
        3600.0,
        ge=0,
        description="Seconds between two rounds of evidence reminders and escalations (before "
        "the due date, on it, and when overdue); 0 turns reminders off.",
    )
    graph_endpoint: str = Field(
        "https://graph.microsoft.com/v1.0", description="Microsoft Graph's base URL."
    )
    sharepoint_site: str | None = Field(
        None,
        description="SharePoint site of the evidence records, `host:/sites/Name` (e.g. "
        "`contoso.sharepoint.com:/sites/Compliance`); provisioning creates its library and lists.",
    )
    evidence_link_hosts: str = Field(
        "",
        description="Comma-separated host suffixes evidence links may point to (e.g. "
        "`contoso.com,github.com`); empty: any public host the SSRF guard allows.",
    )
    evidence_file_hosts: str = Field(
        "*.sharepoint.com",
        description="Comma-separated hosts files attached in a Teams chat are downloaded from "
        "(exact names or `*.suffix` wildcards); Teams hands the bot a short-lived SharePoint or "
        "OneDrive download URL.",
    )

    @field_validator("policy_scopes", mode="before")
    @classmethod
    def _split_evidence_lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("policy_scopes")
    @classmethod
    def _check_policy_scopes(cls, value: list[str]) -> list[str]:
        for item in value:
            if POLICY_SCOPE.fullmatch(item.strip()) is None:
                raise ValueError(
                    f"{item!r}: use /subscriptions/{{id}} or "
                    "/subscriptions/{id}/resourceGroups/{name}"
                )
        return [item.strip().rstrip("/") for item in value]

    @field_validator("sharepoint_site")
    @classmethod
    def _check_sharepoint_site(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if SHAREPOINT_SITE.fullmatch(value.strip()) is None:
            raise ValueError(
                f"{value!r}: use host:/sites/Name, e.g. contoso.sharepoint.com:/sites/Compliance"
            )
        return value.strip()
