"""Graph delta queries through msgraph-sdk: what changed in a list or a document library.

``list_delta`` reads ``GET /sites/{site}/lists/{list}/items/delta`` (with the items'
fields), ``drive_delta`` reads ``GET /drives/{drive}/items/root/delta``. Without a link
they enumerate everything; with the ``@odata.deltaLink`` of an earlier round they return
what changed since. Both follow ``@odata.nextLink`` to the last page and return the new
deltaLink with the changes, one per item (the last occurrence wins, as Graph asks).

A token Graph no longer honours answers ``410 Gone``: that is ``DeltaExpired``, and the
caller starts again without a link (a full resync). Other errors are ``DeliveryError``
(``graph.sharepoint.graph_failure``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.drives.item.items.item.delta.delta_request_builder import (
    DeltaRequestBuilder as DriveDeltaBuilder,
)
from msgraph.generated.models.identity_set import IdentitySet
from msgraph.generated.sites.item.lists.item.items.delta.delta_request_builder import (
    DeltaRequestBuilder as ListDeltaBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from core.errors import WardenError
from graph.sharepoint import ListRef, graph_failure

T = TypeVar("T")

PAGE_SIZE = 200
"""Changes asked for per page (``$top``)."""


class DeltaExpired(WardenError):
    """Graph answered 410 Gone: the delta link is expired; resync from scratch."""


@dataclass(frozen=True)
class Change:
    """One item of a delta round: its state now, and who changed it last."""

    item_id: str
    etag: str = ""
    deleted: bool = False
    folder: bool = False
    name: str = ""
    size: int | None = None
    web_url: str | None = None
    app_id: str | None = None
    who: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeltaRound:
    """Every change of one round (one per item) and the link of the next round."""

    changes: list[Change]
    link: str


class _Page(Protocol):
    """A delta page as the SDK parses it."""

    value: Any
    odata_next_link: str | None
    odata_delta_link: str | None


async def _call(what: str, request: Awaitable[T]) -> T:
    """Await one delta request: 410 is ``DeltaExpired``, other errors ``DeliveryError``."""
    try:
        return await request
    except APIError as exc:
        if exc.response_status_code == 410:
            raise DeltaExpired(f"Graph {what} answered 410 Gone: resync required") from None
        raise graph_failure(exc, what) from None


def modified_by(identities: IdentitySet | None) -> tuple[str | None, str]:
    """The application id (when an app made the change) and who, as people read it."""
    if identities is None:
        return None, ""
    app, user = identities.application, identities.user
    if user is not None:
        email = (user.additional_data or {}).get("email")
        name = user.display_name or user.id or ""
        return None, f"{name} <{email}>" if isinstance(email, str) and email else name
    if app is not None:
        return app.id, app.display_name or app.id or ""
    return None, ""


async def list_delta(
    graph: GraphServiceClient, ref: ListRef, link: str | None, *, page_size: int = PAGE_SIZE
) -> DeltaRound:
    """The items of a list changed since ``link`` (all of them without one), with fields."""
    builder = graph.sites.by_site_id(ref.site_id).lists.by_list_id(ref.list_id).items.delta
    if link:
        first: Awaitable[Any] = builder.with_url(link).get()
    else:
        query = ListDeltaBuilder.DeltaRequestBuilderGetQueryParameters(
            expand=["fields"], top=page_size
        )
        first = builder.get(RequestConfiguration(query_parameters=query))
    changes: dict[str, Change] = {}
    page: _Page | None = await _call("list delta", first)
    while page is not None:
        for item in page.value or []:
            who = modified_by(item.last_modified_by)
            values = dict(item.fields.additional_data) if item.fields is not None else {}
            changes[str(item.id)] = Change(
                str(item.id),
                etag=item.e_tag or str(values.get("@odata.etag", "")),
                deleted=item.deleted is not None,
                name=str(values.get("Title") or ""),
                web_url=item.web_url,
                app_id=who[0],
                who=who[1],
                fields={k: v for k, v in values.items() if not k.startswith("@odata.")},
            )
        if not page.odata_next_link:
            break
        page = await _call("list delta", builder.with_url(page.odata_next_link).get())
    return DeltaRound(list(changes.values()), _delta_link(page))


async def drive_delta(
    graph: GraphServiceClient, drive_id: str, link: str | None, *, page_size: int = PAGE_SIZE
) -> DeltaRound:
    """The drive items of a library changed since ``link`` (all of them without one)."""
    builder = graph.drives.by_drive_id(drive_id).items.by_drive_item_id("root").delta
    if link:
        first: Awaitable[Any] = builder.with_url(link).get()
    else:
        query = DriveDeltaBuilder.DeltaRequestBuilderGetQueryParameters(top=page_size)
        first = builder.get(RequestConfiguration(query_parameters=query))
    changes: dict[str, Change] = {}
    page: _Page | None = await _call("drive delta", first)
    while page is not None:
        for item in page.value or []:
            who = modified_by(item.last_modified_by)
            changes[str(item.id)] = Change(
                str(item.id),
                etag=item.e_tag or "",
                deleted=item.deleted is not None,
                folder=item.folder is not None or item.root is not None,
                name=item.name or "",
                size=item.size,
                web_url=item.web_url,
                app_id=who[0],
                who=who[1],
            )
        if not page.odata_next_link:
            break
        page = await _call("drive delta", builder.with_url(page.odata_next_link).get())
    return DeltaRound(list(changes.values()), _delta_link(page))


def _delta_link(page: _Page | None) -> str:
    """The last page's deltaLink; a round without one cannot be continued."""
    link = page.odata_delta_link if page is not None else None
    if not link:
        raise DeltaExpired("Graph ended a delta round without @odata.deltaLink")
    return link
