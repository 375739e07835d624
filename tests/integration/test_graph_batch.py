"""Bulk list-item writes through Graph ``$batch`` (``graph.batch``) against the Graph sandbox,
and the memoised deserializer maps of ``graph.speedups`` reading a real answer.

The real msgraph-sdk over Warden's resilient httpx client and the real azure-identity
credential (fixtures shared with ``test_provision``); the sandbox's ``$batch`` sends each
inner request to itself over HTTP, so inner faults, the request log and the stored items
are what a real tenant would show.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node import JsonParseNode
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.sites.item.lists.item.items.item.list_item_item_request_builder import (
    ListItemItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from graph import speedups
from graph.batch import BatchIncomplete, ItemUpdate, batch_create_items, batch_update_items
from graph.sharepoint import ListRef, create_item
from sandbox.graph import Fault, GraphSandbox
from sandbox.graph_sharepoint import SharePointRoutes
from sandbox.graph_store import Site, SpList
from tests.integration.test_provision import (  # noqa: F401 - shared fixtures
    arm,
    client,
    credential,
    graph,
    site,
)


@pytest.fixture
def stored(graph: GraphSandbox, site: Site) -> SpList:  # noqa: F811
    """A list with a text and a number column, made in the sandbox directly."""
    columns = [{"name": "RequestId", "text": {}}, {"name": "Seq", "number": {}}]
    body: dict[str, Any] = {"displayName": "Bulk", "columns": columns}
    return graph.sharepoint.add_list(site, body)


@pytest.fixture
def ref(site: Site, stored: SpList) -> ListRef:  # noqa: F811
    """The list's Graph ids."""
    return ListRef(site.id, stored.id)


class Bulk(NamedTuple):
    """Warden's client, the Graph sandbox, the stored list and its ids."""

    client: GraphServiceClient
    graph: GraphSandbox
    stored: SpList
    ref: ListRef


@pytest.fixture
def bulk(
    client: GraphServiceClient,  # noqa: F811
    graph: GraphSandbox,  # noqa: F811
    stored: SpList,
    ref: ListRef,
) -> Bulk:
    """Everything a batch test needs."""
    return Bulk(client, graph, stored, ref)


def rows(count: int) -> list[dict[str, Any]]:
    """Field values of ``count`` items, numbered."""
    return [{"RequestId": f"REQ-{n}", "Seq": n} for n in range(count)]


def batch_sizes(fake: GraphSandbox) -> list[int]:
    """How many inner requests each logged ``POST /$batch`` carried."""
    return [len(entry.body["requests"]) for entry in fake.calls("batch")]


async def test_batch_create_items_45_items_three_batches_ids_in_given_order(
    bulk: Bulk,
) -> None:
    """45 items go out as three batches (20, 20, 5); id i is the item made from row i."""
    sdk, fake, stored, ref = bulk
    fake.clear_requests()
    ids = await batch_create_items(sdk, ref, rows(45))
    assert len(ids) == 45 and len(set(ids)) == 45
    assert [stored.items[int(i)].fields["RequestId"] for i in ids] == [
        f"REQ-{n}" for n in range(45)
    ]
    assert sorted(batch_sizes(fake)) == [5, 20, 20]
    assert [e.method for e in fake.calls("batch")] == ["POST"] * 3
    assert len([e for e in fake.calls("sites") if e.method == "POST"]) == 45


async def test_batch_create_items_throttled_subrequests_resent_alone_after_retry_after(
    bulk: Bulk,
) -> None:
    """Two inner 429s (Retry-After: 1): only those two are sent again, a second later."""
    sdk, fake, stored, ref = bulk
    fake.clear_requests()
    fake.add_fault(Fault(status=429, retry_after=1, method="POST", path="/items", times=2))
    ids = await batch_create_items(sdk, ref, rows(5))
    assert [stored.items[int(i)].fields["Seq"] for i in ids] == [0, 1, 2, 3, 4]
    assert batch_sizes(fake) == [5, 2]
    first, second = fake.calls("batch")
    assert [r["id"] for r in second.body["requests"]] == ["0", "1"]
    assert second.time - first.time >= 0.9
    inner = [(e.status, e.fault) for e in fake.calls("sites") if e.method == "POST"]
    assert inner.count((429, "status")) == 2 and len(inner) == 7
    assert len(stored.items) == 5


async def test_batch_update_items_stale_etag_surfaces_412_and_writes_the_rest(
    bulk: Bulk,
) -> None:
    """An item changed since its eTag was read answers 412: BatchIncomplete names it, the
    other update is written."""
    sdk, fake, stored, ref = bulk
    made = [await create_item(sdk, ref, row) for row in rows(2)]
    fake.sharepoint.update_fields(stored, stored.items[int(made[1].id)], {"Seq": 7}, None)
    updates = [ItemUpdate(item.id, {"RequestId": f"NEW-{item.id}"}, item.etag) for item in made]
    with pytest.raises(BatchIncomplete) as raised:
        await batch_update_items(sdk, ref, updates)
    assert raised.value.status == 412 and raised.value.failures == {1: 412}
    assert raised.value.outcome.value == "retry"
    written, lost = raised.value.results
    assert written is not None and written.fields["RequestId"] == f"NEW-{made[0].id}"
    assert written.etag != made[0].etag and lost is None
    assert stored.items[int(made[1].id)].fields == {"RequestId": "REQ-1", "Seq": 7}


async def test_batch_update_items_412_with_change_is_reapplied_on_current_fields(
    bulk: Bulk,
) -> None:
    """With a ``change``, a 412 is re-read and re-applied (fake.sharepoint's If-Match loop)."""
    sdk, fake, stored, ref = bulk
    item = await create_item(sdk, ref, {"RequestId": "REQ-9", "Seq": 1})
    fake.sharepoint.update_fields(stored, stored.items[int(item.id)], {"Seq": 5}, None)

    def bump(fields: Any) -> dict[str, Any]:
        """One more than what is there now."""
        return {"Seq": fields["Seq"] + 1}

    update = ItemUpdate(item.id, {"Seq": 2}, item.etag, bump)
    [done] = await batch_update_items(sdk, ref, [update])
    assert done.fields["Seq"] == 6 and stored.items[int(item.id)].fields["Seq"] == 6
    patches = [e.status for e in fake.calls("sites") if e.method == "PATCH"]
    assert patches == [412, 200]


async def test_batch_create_items_one_refused_keeps_the_others_ids(bulk: Bulk) -> None:
    """An unknown field fails its request only (400, FAIL); the others' ids come back."""
    sdk, _, stored, ref = bulk
    bad = [*rows(2), {"Nope": "x"}]
    with pytest.raises(BatchIncomplete) as raised:
        await batch_create_items(sdk, ref, bad)
    assert raised.value.failures == {2: 400} and raised.value.outcome.value == "fail"
    first, second, missing = raised.value.results
    assert missing is None
    assert [stored.items[int(i)].fields["Seq"] for i in (first, second)] == [0, 1]


class _SdkParseNode(JsonParseNode):
    """kiota's parse node with its own (unmemoised) field assignment, for reference."""

    _assign_field_values = speedups._ORIGINAL_ASSIGN

    def _create_new_node(self, node: Any) -> JsonParseNode:
        """Nested nodes read the same way."""
        return _SdkParseNode(node)


def _json(model: Parsable) -> Any:
    """A model as kiota serialises it."""
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    return json.loads(writer.get_serialized_content())


async def test_memoised_deserializers_read_sandbox_item_like_the_sdk(
    bulk: Bulk,
    site: Site,  # noqa: F811
) -> None:
    """A listItem read through Warden's client (memoised maps) has its nested objects,
    fields and additional data, exactly as the SDK's own deserialisation reads them."""
    sdk, fake, stored, ref = bulk
    [item_id] = await batch_create_items(sdk, ref, [{"RequestId": "REQ-M", "Seq": 3}])
    query = ListItemItemRequestBuilder.ListItemItemRequestBuilderGetQueryParameters(
        expand=["fields"]
    )
    builder = sdk.sites.by_site_id(site.id).lists.by_list_id(stored.id).items
    found = await builder.by_list_item_id(item_id).get(RequestConfiguration(query_parameters=query))
    assert speedups.applied() and found is not None and found.fields is not None
    assert found.id == item_id and found.e_tag == stored.items[int(item_id)].etag
    assert found.created_by and found.created_by.application
    assert found.created_by.application.display_name == "Warden"
    assert found.parent_reference and found.parent_reference.site_id == site.id
    assert found.content_type and found.content_type.name == "Item"
    assert found.fields.additional_data["RequestId"] == "REQ-M"
    assert found.fields.additional_data["Seq"] == 3
    assert found.additional_data["@odata.etag"] == found.e_tag
    raw = SharePointRoutes(fake).item_json(site, stored, stored.items[int(item_id)], "fields")
    reference = _SdkParseNode(raw).get_object_value(ListItem)
    assert _json(found) == _json(reference)
