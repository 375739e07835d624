"""ITSM records as Warden sees them, whatever the system: links, records, changes, CIs.

``IncidentLink`` ties a Sentinel incident to a ServiceNow record or a Jira Service
Management issue; ``ConfigurationItem`` is Warden's CMDB CI contract; ``ItsmRecord`` is
what a lookup returns and ``ItsmChange`` what Warden writes. ``ItsmConnector`` is the
interface every ITSM connector implements, so callers never name a vendor. The JSON
Schemas of ``IncidentLink`` and ``ConfigurationItem`` are published in ``docs/schemas/``
(``write_schemas`` regenerates them). Nothing here does I/O but ``require_record``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import ItsmRecordNotFound

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"
"""Where Warden's data contracts are published."""


class ItsmSystem(StrEnum):
    """The ITSM system a record lives in."""

    SERVICENOW = "servicenow"
    JSM = "jsm"

    @property
    def display_name(self) -> str:
        """The system's name as people read it."""
        return "ServiceNow" if self is ItsmSystem.SERVICENOW else "Jira Service Management"


class RecordType(StrEnum):
    """The kind of record (ServiceNow's table name; Jira maps its issue types onto these)."""

    CHANGE_REQUEST = "change_request"
    INCIDENT = "incident"
    PROBLEM = "problem"
    REQUEST_ITEM = "sc_req_item"

    @property
    def prefix(self) -> str:
        """The number prefix ServiceNow gives records of this type (CHG, INC, ...)."""
        return _PREFIXES[self]

    @classmethod
    def of_number(cls, number: str) -> RecordType:
        """The type a record number names by its prefix; ``ValueError`` when none does."""
        found = _NUMBER.fullmatch(number.strip().upper())
        if found is not None:
            for kind, prefix in _PREFIXES.items():
                if found["prefix"] == prefix:
                    return kind
        prefixes = ", ".join(_PREFIXES.values())
        raise ValueError(f"{number!r} is not a record number ({prefixes} and 7+ digits)")


_PREFIXES = {
    RecordType.CHANGE_REQUEST: "CHG",
    RecordType.INCIDENT: "INC",
    RecordType.PROBLEM: "PRB",
    RecordType.REQUEST_ITEM: "RITM",
}
_NUMBER = re.compile(r"(?P<prefix>[A-Z]{2,4})(?P<digits>[0-9]{7,12})")
_URL = r"^https?://[^\s/?#]+[^\s]*$"
_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,9}")


def normalize_number(number: str) -> str:
    """``number`` upper-cased and stripped; ``ValueError`` unless it is a record number."""
    RecordType.of_number(number)
    return number.strip().upper()


def is_issue_key(text: str) -> bool:
    """True when ``text`` is a Jira issue key (``SEC-123``), in any case."""
    return _ISSUE_KEY.fullmatch(text.strip().upper()) is not None


def normalize_reference(system: ItsmSystem, text: str) -> str:
    """``text`` as ``system`` names its records: a ServiceNow number or a Jira issue key,
    upper-cased; ``ValueError`` when it is neither."""
    if system is ItsmSystem.SERVICENOW:
        return normalize_number(text)
    if not is_issue_key(text):
        raise ValueError(f"{text!r} is not an issue key (e.g. SEC-123)")
    return text.strip().upper()


class _Frozen(BaseModel):
    """Base of the contracts: immutable, unknown keys refused, camelCase or snake_case in."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _utc(value: datetime) -> datetime:
    """An aware datetime in UTC; ``ValueError`` for a naive one."""
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (RFC 3339), e.g. 2026-11-25T09:30:00Z")
    return value.astimezone(UTC)


class IncidentLink(_Frozen):
    """A Sentinel incident's link to an ITSM record, as stored and shown on the card.

    ``key`` is the system's own immutable id (ServiceNow's ``sys_id``, Jira's issue id):
    writes address a record by it, and a number can be re-used after a record is deleted,
    so a stored link keeps both.
    """

    system: ItsmSystem = Field(description="The ITSM system the record lives in.")
    external_id: str = Field(
        alias="externalId",
        description="The record number people use, e.g. CHG0030001 or the issue key SEC-123.",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        description="The system's own immutable id (ServiceNow sys_id, Jira issue id).",
    )
    url: str = Field(pattern=_URL, description="Where a person opens the record (http/https).")
    type: RecordType = Field(description="The kind of record.")
    status: str = Field(description="The record's state as its system labels it.")
    priority: int | None = Field(
        default=None, ge=1, le=5, description="1 (critical) to 5 (planning)."
    )

    @model_validator(mode="after")
    def _number_matches_type(self) -> IncidentLink:
        if self.system is ItsmSystem.SERVICENOW:
            number = normalize_number(self.external_id)
            if RecordType.of_number(number) is not self.type:
                raise ValueError(f"{number} is not a {self.type.value} number")
        else:
            normalize_reference(self.system, self.external_id)
        return self


class ConfigurationItem(_Frozen):
    """Warden's CMDB CI contract: a configuration item matching an incident's entity."""

    ci_id: str = Field(alias="ciId", min_length=1, description="The CMDB's id of the CI.")
    name: str = Field(min_length=1, description="The CI's name (often a host name).")
    type: str = Field(description="The CI class, e.g. cmdb_ci_linux_server.")
    owner: str | None = Field(default=None, description="Who owns the CI (a display name).")
    env: str | None = Field(default=None, description="Its environment, e.g. Production.")
    tags: list[str] = Field(default_factory=list, description="Labels given to the CI.")
    last_seen_utc: datetime = Field(
        alias="lastSeenUtc",
        description="When the CMDB last saw it: discovery, else the last update (UTC, RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )

    @field_validator("last_seen_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _utc(value)


class ItsmRecord(BaseModel):
    """One record as a lookup returns it (every field already typed)."""

    model_config = ConfigDict(frozen=True)

    system: ItsmSystem
    type: RecordType
    number: str
    key: str = Field(min_length=1, description="The system's own id (ServiceNow sys_id).")
    short_description: str = ""
    state: str = Field("", description="The state's value as the system stores it.")
    state_label: str = Field("", description="The state as the system shows it.")
    priority: int | None = None
    impact: int | None = None
    urgency: int | None = None
    updated_at: datetime | None = None
    updated_by: str = ""
    url: str = ""
    correlation_id: str = ""
    close_code: str = ""

    def link(self) -> IncidentLink:
        """The ``IncidentLink`` that points at this record."""
        return IncidentLink(
            system=self.system,
            external_id=self.number,
            key=self.key,
            url=self.url,
            type=self.type,
            status=self.state_label or self.state,
            priority=self.priority,
        )


class ItsmChange(BaseModel):
    """What Warden writes to a record: only the fields set are sent.

    ``state``, ``close_code`` are the system's stored values (``fields``-module mappings
    produce them). ``priority`` is written as given: set it to what impact × urgency give,
    as the mapping does, so an instance's priority lookup agrees.
    """

    model_config = ConfigDict(frozen=True)

    work_note: str | None = None
    state: str | None = None
    impact: int | None = Field(default=None, ge=1, le=3)
    urgency: int | None = Field(default=None, ge=1, le=3)
    priority: int | None = Field(default=None, ge=1, le=5)
    close_code: str | None = None
    close_notes: str | None = None
    fields: dict[str, str] = Field(default_factory=dict, description="Other fields, as stored.")


class ChangeDraft(BaseModel):
    """A change request Warden asks to create; ``correlation_id`` makes it idempotent.

    With both ``impact`` and ``urgency`` set, the connector writes the priority they give.
    """

    model_config = ConfigDict(frozen=True)

    correlation_id: str = Field(min_length=1, max_length=100)
    short_description: str = Field(min_length=1, max_length=160)
    description: str = ""
    correlation_display: str = ""
    impact: int | None = Field(default=None, ge=1, le=3)
    urgency: int | None = Field(default=None, ge=1, le=3)
    fields: dict[str, str] = Field(default_factory=dict)


class ItsmConnector(Protocol):
    """What every ITSM connector offers; callers depend on this, never on a vendor.

    Failures are ``DeliveryError``s (``outcome`` says whether to retry); a query that
    must match one record and did not is ``ItsmAmbiguous``, and nothing is written.
    """

    system: ItsmSystem

    async def get(self, number: str) -> ItsmRecord | None:
        """The record with this number, or None when none can be read."""
        ...

    async def search(
        self, text: str, *, types: Sequence[RecordType], limit: int = 10
    ) -> list[ItsmRecord]:
        """Records whose number starts with ``text`` or whose short description has it."""
        ...

    async def create_change(self, draft: ChangeDraft) -> ItsmRecord:
        """The change request for ``draft.correlation_id``: the existing one, or a new one."""
        ...

    async def upsert_by_correlation(
        self, table: RecordType, correlation_id: str, fields: Mapping[str, str]
    ) -> ItsmRecord:
        """Create the one record with this correlation id, or update it with ``fields``."""
        ...

    async def add_work_note(self, record: ItsmRecord, text: str) -> ItsmRecord:
        """Append an internal work note to ``record``."""
        ...

    async def update(self, record: ItsmRecord, change: ItsmChange) -> ItsmRecord:
        """Write ``change`` to ``record``; the record as stored afterwards."""
        ...

    def changed_since(
        self, watermark: datetime, *, types: Sequence[RecordType]
    ) -> AsyncIterator[ItsmRecord]:
        """Records updated at or after ``watermark`` (less an overlap), oldest first."""
        ...

    async def configuration_items(
        self, names_or_addresses: Sequence[str]
    ) -> list[ConfigurationItem]:
        """The CIs whose name, FQDN or IP address is one of ``names_or_addresses``."""
        ...

    async def aclose(self) -> None:
        """Release what the connector holds (not the injected HTTP client)."""
        ...


async def require_record(connector: ItsmConnector, number: str) -> ItsmRecord:
    """The record ``number``; ``ItsmRecordNotFound`` when the connector cannot read it."""
    record = await connector.get(number)
    if record is None:
        raise ItsmRecordNotFound(number.strip().upper(), system=connector.system.display_name)
    return record


SCHEMAS: dict[str, type[BaseModel]] = {
    "incident-link.schema.json": IncidentLink,
    "cmdb-ci.schema.json": ConfigurationItem,
}
"""The published contracts: file name in ``docs/schemas`` → model."""


def schema_document(model: type[BaseModel]) -> str:
    """The JSON Schema of ``model`` as published in ``docs/schemas`` (camelCase names)."""
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> None:
    """Write every published schema to ``directory`` (regenerate after changing a model)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in SCHEMAS.items():
        (directory / name).write_text(schema_document(model), encoding="utf-8")
