"""Typed SharePoint operations through msgraph-sdk: sites, lists, columns and list items.

Everything goes through Warden's ``GraphServiceClient`` (``graph.client``), so throttling
(429 with ``Retry-After``), 5xx and timeouts of replayable calls (GET) are retried by the
resilient transport underneath. What is left when an answer is an error arrives here as
kiota's ``APIError`` and leaves as ``DeliveryError`` with the outcome of the classification
table (``core.outcomes``): the outbox decides from it whether and when to try again.

POST and PATCH are sent once by the transport (they are not idempotent); an item update is
made safe with ``If-Match`` instead: ``update_item_fields`` re-reads and re-applies the
caller's change when someone else changed the item in between (412).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.site import Site
from msgraph.generated.sites.item.lists.item.items.item.list_item_item_request_builder import (
    ListItemItemRequestBuilder,
)
from msgraph.generated.sites.item.lists.item.items.items_request_builder import (
    ItemsRequestBuilder,
)
from msgraph.generated.sites.item.lists.item.list_item_request_builder import (
    ListItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status
from core.settings.evidence import SHAREPOINT_SITE

T = TypeVar("T")

UPDATE_ROUNDS = 3
"""How many times ``update_item_fields`` reads, changes and writes before it gives up."""

FieldChange = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""Given an item's current fields, the fields to write (None or empty: nothing to do)."""


@dataclass(frozen=True)
class SitePath:
    """A site addressed by host name and server-relative path (``sites/Name``)."""

    hostname: str
    path: str

    @classmethod
    def parse(cls, text: str) -> SitePath:
        """Parse ``host:/sites/Name`` (``WARDEN_SHAREPOINT_SITE``); ValueError otherwise."""
        found = SHAREPOINT_SITE.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"{text!r}: use host:/sites/Name")
        return cls(found["host"].lower(), found["path"])

    @property
    def site_key(self) -> str:
        """The site id segment Graph accepts for a path: ``host:/sites/Name:``."""
        return f"{self.hostname}:/{self.path}:"

    def __str__(self) -> str:
        """``host:/sites/Name``."""
        return f"{self.hostname}:/{self.path}"


@dataclass(frozen=True)
class ListRef:
    """One list (or document library) of one site, by Graph ids."""

    site_id: str
    list_id: str


@dataclass(frozen=True)
class ItemFields:
    """A list item as the evidence code sees it: id, eTag and field values."""

    id: str
    etag: str
    fields: dict[str, Any]


def graph_failure(exc: APIError, what: str) -> DeliveryError:
    """Map a Graph error answer to ``DeliveryError`` (outcome from ``core.outcomes``).

    The text names the operation, status and Graph's error code only: Graph's message may
    echo field values, which are not for logs.
    """
    status = exc.response_status_code
    code = ""
    if isinstance(exc, ODataError) and exc.error is not None:
        code = exc.error.code or ""
    headers = httpx.Headers(exc.response_headers or {})
    return DeliveryError(
        f"Graph {what} answered {status} {code}".rstrip(),
        outcome=classify_status(status) if status else Outcome.FAIL,
        status=status,
        retry_after=server_delay(headers),
    )


async def call(what: str, request: Awaitable[T]) -> T:
    """Await one Graph request, turning an error answer into ``DeliveryError``."""
    try:
        return await request
    except APIError as exc:
        raise graph_failure(exc, what) from None


def _required(value: T | None, what: str) -> T:
    """A Graph answer that must be there (a 2xx without a body is a broken contract)."""
    if value is None:
        raise DeliveryError(f"Graph {what} answered without a body", outcome=Outcome.RETRY)
    return value


# Sites and lists.


async def site_by_path(graph: GraphServiceClient, site: SitePath) -> Site:
    """The site at ``site`` (``GET /sites/{host}:/{path}``); DeliveryError GONE if absent."""
    found = await call("site", graph.sites.by_site_id(site.site_key).get())
    return _required(found, "site")


async def lists_of(graph: GraphServiceClient, site_id: str) -> list[List_]:
    """Every list and library of a site, following ``@odata.nextLink``."""
    builder = graph.sites.by_site_id(site_id).lists
    page = await call("lists", builder.get())
    found: list[List_] = []
    while page is not None:
        found += page.value or []
        if not page.odata_next_link:
            break
        page = await call("lists", builder.with_url(page.odata_next_link).get())
    return found


async def list_by_name(graph: GraphServiceClient, site_id: str, display_name: str) -> List_ | None:
    """The list whose display name is ``display_name`` (case-insensitive), or None."""
    wanted = display_name.casefold()
    for candidate in await lists_of(graph, site_id):
        if (candidate.display_name or "").casefold() == wanted:
            return candidate
    return None


async def create_list(graph: GraphServiceClient, site_id: str, body: List_) -> List_:
    """Create a list (with the columns in ``body``); DeliveryError on 409 and others."""
    made = await call("create list", graph.sites.by_site_id(site_id).lists.post(body))
    return _required(made, "create list")


async def columns_of(graph: GraphServiceClient, ref: ListRef) -> list[ColumnDefinition]:
    """The columns of a list, following ``@odata.nextLink``."""
    builder = _list(graph, ref).columns
    page = await call("columns", builder.get())
    found: list[ColumnDefinition] = []
    while page is not None:
        found += page.value or []
        if not page.odata_next_link:
            break
        page = await call("columns", builder.with_url(page.odata_next_link).get())
    return found


async def add_column(
    graph: GraphServiceClient, ref: ListRef, column: ColumnDefinition
) -> ColumnDefinition:
    """Add a column to a list."""
    made = await call("add column", _list(graph, ref).columns.post(column))
    return _required(made, "add column")


# List items.


async def create_item(
    graph: GraphServiceClient, ref: ListRef, fields: Mapping[str, Any]
) -> ItemFields:
    """Create a list item with these field values (internal column names)."""
    body = ListItem(fields=FieldValueSet(additional_data=dict(fields)))
    made = await call("create item", _list(graph, ref).items.post(body))
    return _item_fields(_required(made, "create item"))


async def get_item(graph: GraphServiceClient, ref: ListRef, item_id: str) -> ItemFields:
    """One list item with its fields and eTag."""
    query = ListItemItemRequestBuilder.ListItemItemRequestBuilderGetQueryParameters(
        expand=["fields"]
    )
    config = RequestConfiguration(query_parameters=query)
    found = await call("item", _list(graph, ref).items.by_list_item_id(item_id).get(config))
    return _item_fields(_required(found, "item"))


async def update_item_fields(
    graph: GraphServiceClient,
    ref: ListRef,
    item_id: str,
    change: FieldChange,
    *,
    rounds: int = UPDATE_ROUNDS,
) -> ItemFields:
    """Apply ``change`` to an item's fields under ``If-Match``; re-read and redo on 412.

    Each round reads the item, asks ``change`` what to write given the current fields, and
    PATCHes that with the eTag read. When ``change`` has nothing to write the item is
    returned as read. After ``rounds`` rounds lost to concurrent writers, DeliveryError
    (RETRY, status 412): the outbox tries again later.
    """
    fields = _list(graph, ref).items.by_list_item_id(item_id).fields
    for _ in range(rounds):
        current = await get_item(graph, ref, item_id)
        wanted = change(current.fields)
        if not wanted:
            return current
        config: RequestConfiguration[Any] = RequestConfiguration()
        config.headers.add("If-Match", current.etag)
        try:
            written = await fields.patch(FieldValueSet(additional_data=dict(wanted)), config)
        except APIError as exc:
            if exc.response_status_code == 412:
                continue
            raise graph_failure(exc, "update item") from None
        values = dict(_required(written, "update item").additional_data)
        etag = str(values.pop("@odata.etag", ""))
        return ItemFields(current.id, etag, {**current.fields, **values})
    raise DeliveryError(
        f"Graph update item: changed by others {rounds} times in a row",
        outcome=Outcome.RETRY,
        status=412,
    )


async def read_items(
    graph: GraphServiceClient,
    ref: ListRef,
    *,
    page_size: int = 200,
    filter_: str | None = None,
) -> AsyncIterator[ItemFields]:
    """Every item of a list with its fields, page by page (``$top``, ``@odata.nextLink``)."""
    items = _list(graph, ref).items
    query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
        expand=["fields"], top=page_size, filter=filter_
    )
    page = await call("items", items.get(RequestConfiguration(query_parameters=query)))
    while page is not None:
        for item in page.value or []:
            yield _item_fields(item)
        if not page.odata_next_link:
            return
        page = await call("items", items.with_url(page.odata_next_link).get())


def _list(graph: GraphServiceClient, ref: ListRef) -> ListItemRequestBuilder:
    """The request builder of one list."""
    return graph.sites.by_site_id(ref.site_id).lists.by_list_id(ref.list_id)


def _item_fields(item: ListItem) -> ItemFields:
    """Our view of a listItem (fields without Graph's annotations)."""
    values = dict(item.fields.additional_data) if item.fields is not None else {}
    etag = item.e_tag or str(values.get("@odata.etag", ""))
    fields = {k: v for k, v in values.items() if not k.startswith("@odata.")}
    return ItemFields(str(item.id or ""), etag, fields)
