"""Provision the evidence site: the *Evidence* library and the *Evidence Requests* and
*Audit Log* lists, with their columns, through msgraph-sdk. Idempotent.

Each run compares what is there with ``SCHEMA``: a missing list is created with all its
columns, a missing column is added, a present one is left alone. A column whose type does
not fit ours (say RequestId is a number) or a choice column lacking one of our choices is
reported as ``incompatible`` and never changed: changing a column's type can lose what it
holds, so that is an operator's decision. A second run against a complete site reports
``exists`` everywhere and changes nothing.

Views are not provisioned: Microsoft Graph v1.0 has no API for list views (no ``views``
relationship on ``list``). Create them in SharePoint itself (or with the SharePoint REST
API, ``/_api/web/lists/.../views``); the report says so rather than pretending.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum

from azure.core.credentials_async import AsyncTokenCredential
from msgraph.generated.models.choice_column import ChoiceColumn
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.date_time_column import DateTimeColumn
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_info import ListInfo
from msgraph.generated.models.number_column import NumberColumn
from msgraph.generated.models.text_column import TextColumn
from msgraph.graph_service_client import GraphServiceClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.breaker import Breakers
from core.errors import DeliveryError, SettingsError
from core.settings import Settings
from graph.client import graph_client, graph_http
from graph.sharepoint import (
    ListRef,
    SitePath,
    add_column,
    columns_of,
    create_list,
    list_by_name,
    site_by_path,
)

VIEWS_NOTE = (
    "Views are not provisioned: Microsoft Graph v1.0 has no API for list views. "
    "Create them in SharePoint (or with the SharePoint REST API)."
)
TYPES_NOTE = "Column types are never changed: an incompatible column needs an operator."

_FACETS = (
    "text",
    "number",
    "boolean",
    "date_time",
    "choice",
    "currency",
    "person_or_group",
    "lookup",
    "calculated",
    "hyperlink_or_picture",
    "term",
    "geolocation",
)
"""Type facets of ``ColumnDefinition`` (one is set), as the SDK names them."""


class Kind(StrEnum):
    """The column types the evidence site uses."""

    TEXT = "text"
    NOTE = "multi-line text"
    NUMBER = "number"
    DATE_TIME = "dateTime"
    CHOICE = "choice"


class Status(StrEnum):
    """What provisioning found or did, per list and per column."""

    CREATED = "created"
    EXISTS = "exists"
    ADDED = "added"
    UPDATED = "updated"
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True)
class ColumnSpec:
    """A column we need: internal name, type, choices; ``builtin`` ones SharePoint makes."""

    name: str
    kind: Kind = Kind.TEXT
    choices: tuple[str, ...] = ()
    indexed: bool = False
    builtin: bool = False

    def definition(self) -> ColumnDefinition:
        """The columnDefinition to create this column with."""
        column = ColumnDefinition(name=self.name, display_name=self.name, indexed=self.indexed)
        if self.kind is Kind.TEXT:
            column.text = TextColumn(allow_multiple_lines=False, max_length=255)
        elif self.kind is Kind.NOTE:
            column.text = TextColumn(allow_multiple_lines=True)
        elif self.kind is Kind.NUMBER:
            column.number = NumberColumn()
        elif self.kind is Kind.DATE_TIME:
            column.date_time = DateTimeColumn(format="dateTime")
        else:
            column.choice = ChoiceColumn(choices=list(self.choices), display_as="dropDownMenu")
        return column

    def mismatch(self, found: ColumnDefinition) -> str | None:
        """Why ``found`` cannot hold this column's values, or None when it can."""
        facet = next((name for name in _FACETS if getattr(found, name, None) is not None), None)
        wanted = "text" if self.kind in (Kind.TEXT, Kind.NOTE) else _snake(self.kind.value)
        if facet is not None and facet != wanted:
            return f"is {facet}, needs {self.kind.value}"
        if self.kind is Kind.NOTE and found.text and found.text.allow_multiple_lines is False:
            return "is single-line text, needs multi-line text"
        if self.kind is Kind.CHOICE:
            have = set(found.choice.choices or []) if found.choice else set()
            missing = [choice for choice in self.choices if choice not in have]
            if missing:
                return "lacks choices " + ", ".join(missing)
        return None


@dataclass(frozen=True)
class ListSpec:
    """A list or document library we need, with its columns."""

    display_name: str
    template: str
    columns: tuple[ColumnSpec, ...]

    def definition(self) -> List_:
        """The list to create, with every non-builtin column."""
        return List_(
            display_name=self.display_name,
            list_=ListInfo(template=self.template),
            columns=[c.definition() for c in self.columns if not c.builtin],
        )


DECISIONS = ("Pending", "Approved", "Rejected", "ChangesRequested")
EVIDENCE_TYPES = ("File", "Link", "Attestation")
REQUEST_STATUSES = ("Open", "Submitted", "Approved", "Rejected", "ChangesRequested", "Closed")

SCHEMA: tuple[ListSpec, ...] = (
    ListSpec(
        "Evidence",
        "documentLibrary",
        (
            ColumnSpec("RequirementId", indexed=True),
            ColumnSpec("RequestId", indexed=True),
            ColumnSpec("Sha256"),
            ColumnSpec("SubmittedBy"),
            ColumnSpec("Decision", Kind.CHOICE, DECISIONS),
            ColumnSpec("DecidedBy"),
            ColumnSpec("DecidedAtUtc", Kind.DATE_TIME),
            ColumnSpec("PolicyId"),
            ColumnSpec("EvidenceType", Kind.CHOICE, EVIDENCE_TYPES),
        ),
    ),
    ListSpec(
        "Evidence Requests",
        "genericList",
        (
            ColumnSpec("RequestId", indexed=True),
            ColumnSpec("RequirementId", indexed=True),
            ColumnSpec("Title", builtin=True),
            ColumnSpec("Status", Kind.CHOICE, REQUEST_STATUSES),
            ColumnSpec("Owner"),
            ColumnSpec("DueUtc", Kind.DATE_TIME),
            ColumnSpec("Approvals", Kind.NUMBER),
            ColumnSpec("ApprovalsNeeded", Kind.NUMBER),
            ColumnSpec("Period"),
        ),
    ),
    ListSpec(
        "Audit Log",
        "genericList",
        (
            ColumnSpec("Seq", Kind.NUMBER, indexed=True),
            ColumnSpec("AtUtc", Kind.DATE_TIME),
            ColumnSpec("Actor"),
            ColumnSpec("Action"),
            ColumnSpec("RequestId", indexed=True),
            ColumnSpec("RequirementId"),
            ColumnSpec("Details", Kind.NOTE),
            ColumnSpec("PrevHash"),
            ColumnSpec("Hash"),
        ),
    ),
)
"""The evidence site: one library and two lists."""


@dataclass(frozen=True)
class ColumnReport:
    """One column's outcome."""

    name: str
    status: Status
    detail: str = ""


@dataclass
class ListReport:
    """One list's outcome and its columns'."""

    display_name: str
    status: Status
    list_id: str = ""
    detail: str = ""
    columns: list[ColumnReport] = field(default_factory=list)


@dataclass
class ProvisionReport:
    """What a provisioning run found and did on one site."""

    site: str
    site_id: str
    lists: list[ListReport] = field(default_factory=list)
    notes: tuple[str, ...] = (VIEWS_NOTE, TYPES_NOTE)

    @property
    def changed(self) -> bool:
        """True when this run created or added anything."""
        return any(
            entry.status in (Status.CREATED, Status.UPDATED)
            or any(c.status in (Status.CREATED, Status.ADDED) for c in entry.columns)
            for entry in self.lists
        )

    @property
    def problems(self) -> list[str]:
        """Lists and columns left incompatible, as ``List/Column: why``."""
        found = [f"{e.display_name}: {e.detail}" for e in self.lists if e.detail]
        for entry in self.lists:
            found += [
                f"{entry.display_name}/{c.name}: {c.detail}"
                for c in entry.columns
                if c.status is Status.INCOMPATIBLE
            ]
        return found


async def provision_site(
    graph: GraphServiceClient, site: SitePath, schema: tuple[ListSpec, ...] = SCHEMA
) -> ProvisionReport:
    """Bring ``site`` up to ``schema``; DeliveryError when Graph fails (nothing half-hidden)."""
    found = await site_by_path(graph, site)
    site_id = found.id or ""
    report = ProvisionReport(str(site), site_id)
    for spec in schema:
        report.lists.append(await _provision_list(graph, site_id, spec))
    return report


async def _provision_list(graph: GraphServiceClient, site_id: str, spec: ListSpec) -> ListReport:
    """Create ``spec``'s list, or check (and complete) the one there."""
    existing = await list_by_name(graph, site_id, spec.display_name)
    if existing is None:
        try:
            made = await create_list(graph, site_id, spec.definition())
        except DeliveryError as exc:
            if exc.status != 409:
                raise
            existing = await list_by_name(graph, site_id, spec.display_name)
            if existing is None:
                raise
        else:
            columns = [ColumnReport(c.name, Status.CREATED) for c in spec.columns if not c.builtin]
            return ListReport(spec.display_name, Status.CREATED, made.id or "", columns=columns)
    entry = ListReport(spec.display_name, Status.EXISTS, existing.id or "")
    template = existing.list_.template if existing.list_ else None
    if template and template != spec.template:
        entry.status = Status.INCOMPATIBLE
        entry.detail = f"is a {template}, needs a {spec.template}"
        return entry
    entry.columns = await _provision_columns(graph, ListRef(site_id, entry.list_id), spec)
    if any(c.status is Status.ADDED for c in entry.columns):
        entry.status = Status.UPDATED
    return entry


async def _provision_columns(
    graph: GraphServiceClient, ref: ListRef, spec: ListSpec
) -> list[ColumnReport]:
    """Add the missing columns of ``spec``; report the present ones (and misfits)."""
    present = await columns_of(graph, ref)
    by_name = {c.name.casefold(): c for c in present if c.name}
    by_display = {c.display_name.casefold(): c for c in present if c.display_name}
    reports: list[ColumnReport] = []
    for column in spec.columns:
        key = column.name.casefold()
        found = by_name.get(key) or by_display.get(key)
        if found is None:
            await add_column(graph, ref, column.definition())
            reports.append(ColumnReport(column.name, Status.ADDED))
            continue
        why = column.mismatch(found)
        if found.name and found.name.casefold() != key:
            why = f"is named {found.name} inside SharePoint, needs {column.name}"
        status = Status.INCOMPATIBLE if why else Status.EXISTS
        reports.append(ColumnReport(column.name, status, why or ""))
    return reports


async def provision(
    settings: Settings,
    credential: AsyncTokenCredential,
    *,
    breakers: Breakers | None = None,
    verify: ssl.SSLContext | bool = True,
) -> ProvisionReport:
    """Provision ``WARDEN_SHAREPOINT_SITE`` through ``WARDEN_GRAPH_ENDPOINT``.

    ``credential`` is Warden's Graph identity (it needs ``Sites.Manage.All`` or
    ``Sites.FullControl.All``, or ``Sites.Selected`` with manage rights on the site);
    the caller closes it. ``verify`` is what Graph's certificate is checked against.
    """
    if not settings.sharepoint_site:
        raise SettingsError("WARDEN_SHAREPOINT_SITE is not set (host:/sites/Name)")
    site = SitePath.parse(settings.sharepoint_site)
    async with graph_http(breakers or Breakers(), verify) as http:
        graph = graph_client(credential, http, base_url=settings.graph_endpoint)
        return await provision_site(graph, site)


def print_report(report: ProvisionReport, console: Console) -> None:
    """Show a provisioning report as a table, then its problems and notes."""
    table = Table(title=f"SharePoint site {escape(report.site)}")
    for heading in ("List", "Column", "Status", "Detail"):
        table.add_column(heading)
    for entry in report.lists:
        table.add_row(escape(entry.display_name), "", entry.status.value, escape(entry.detail))
        for column in entry.columns:
            table.add_row("", escape(column.name), column.status.value, escape(column.detail))
    console.print(table)
    console.print("Changed." if report.changed else "Nothing to change.")
    for problem in report.problems:
        console.print(f"[red]Incompatible:[/] {escape(problem)}")
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/]")


def _snake(name: str) -> str:
    """``dateTime`` → ``date_time`` (the SDK's attribute names)."""
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)
