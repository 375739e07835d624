# ruff: noqa: F811  (fixtures imported from test_sandbox_graph are parameters here)
"""Delta queries of the Graph sandbox over HTTP: paging, tokens, deleted items, who changed
what, and 410 Gone for a token it no longer honours (as Graph's listItem/driveItem delta)."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.graph import GraphSandbox
from sandbox.graph_store import Site
from tests.contract.test_sandbox_graph import (  # noqa: F401  (fixtures)
    add_item,
    arm,
    assert_graph_error,
    client,
    credential,
    graph,
    http,
    make_list,
    raw,
    site,
)


async def pages(http: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], str, int]:
    """Every item of a delta round from ``url``, its deltaLink and how many pages it took."""
    found: list[dict[str, Any]] = []
    count = 0
    while True:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["value"]
        count += 1
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return found, body["@odata.deltaLink"], count


async def test_delta_list_fresh_enumeration_pages_then_delta_link(
    http: httpx.AsyncClient, client: Any, site: Site
) -> None:
    """Five items with $top=2: three pages, each item once, the last page a deltaLink."""
    list_id = await make_list(client, site)
    for number in range(5):
        await add_item(client, site, list_id, Title=f"R{number}")
    url = f"sites/{site.id}/lists/{list_id}/items/delta()?$top=2&$expand=fields"
    items, link, count = await pages(http, url)
    assert count == 3 and sorted(i["fields"]["Title"] for i in items) == [f"R{n}" for n in range(5)]
    assert "token=" in link and all("deleted" not in item for item in items)
    assert all(item["lastModifiedBy"]["application"]["displayName"] for item in items)


async def test_delta_list_after_token_person_edit_and_delete_only(
    http: httpx.AsyncClient, client: Any, site: Site, graph: GraphSandbox, raw: httpx.AsyncClient
) -> None:
    """After a deltaLink: a person's edit (lastModifiedBy.user) and a deletion, nothing else."""
    list_id = await make_list(client, site)
    for number in range(3):
        await add_item(client, site, list_id, Title=f"R{number}")
    _, link, _ = await pages(http, f"sites/{site.id}/lists/{list_id}/items/delta")
    control = f"{graph.url}/_sandbox/sharepoint/lists/{list_id}/items"
    edited = await raw.patch(f"{control}/2?by=Adele%20Vance", json={"fields": {"Title": "x"}})
    assert edited.status_code == 200
    assert (await raw.delete(f"{control}/3")).status_code == 204
    items, again, _ = await pages(http, link)
    by_id = {item["id"]: item for item in items}
    assert sorted(by_id) == ["2", "3"] and by_id["3"]["deleted"] == {"state": "deleted"}
    assert by_id["2"]["lastModifiedBy"]["user"]["displayName"] == "Adele Vance"
    assert (await pages(http, again))[0] == []


async def test_delta_expired_token_answers_410_with_fresh_location(
    http: httpx.AsyncClient, client: Any, site: Site, graph: GraphSandbox, raw: httpx.AsyncClient
) -> None:
    """Tokens expired by the switch: 410 resyncChangesApplyDifferences, Location enumerates."""
    list_id = await make_list(client, site)
    await add_item(client, site, list_id, Title="R0")
    _, link, _ = await pages(http, f"sites/{site.id}/lists/{list_id}/items/delta")
    assert (await raw.post(f"{graph.url}/_sandbox/delta/expire")).status_code == 200
    gone = await http.get(link)
    assert_graph_error(gone, 410, "resyncChangesApplyDifferences")
    assert "token=" not in gone.headers["Location"]
    items, _, _ = await pages(http, gone.headers["Location"])
    assert [item["id"] for item in items] == ["1"]
    garbage = await http.get(f"sites/{site.id}/lists/{list_id}/items/delta?token=bm9wZQ")
    assert_graph_error(garbage, 410, "resyncChangesApplyDifferences")


async def test_delta_drive_file_replaced_by_person_then_deleted(
    http: httpx.AsyncClient, client: Any, site: Site, graph: GraphSandbox, raw: httpx.AsyncClient
) -> None:
    """A library file replaced by a person shows lastModifiedBy.user; deleted, the facet."""
    await make_list(client, site, "documentLibrary")
    [drive] = (await http.get(f"sites/{site.id}/drives")).json()["value"]
    put = await http.put(f"drives/{drive['id']}/root:/a/report.pdf:/content", content=b"one")
    item_id = put.json()["id"]
    _, link, _ = await pages(http, f"drives/{drive['id']}/items/root/delta()")
    control = f"{graph.url}/_sandbox/sharepoint/drives/{drive['id']}/items/{item_id}"
    assert (await raw.put(f"{control}/content", content=b"two!")).status_code == 200
    items, link, _ = await pages(http, link)
    [changed] = items
    assert changed["lastModifiedBy"]["user"]["displayName"] == "Megan Bowen"
    assert changed["size"] == 4 and changed["eTag"] != put.json()["eTag"]
    assert (await raw.delete(control)).status_code == 204
    items, _, _ = await pages(http, link)
    assert items == [{"id": item_id, "name": "report.pdf", "deleted": {"state": "deleted"}}]
