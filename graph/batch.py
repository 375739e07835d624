"""Bulk list-item writes through Graph JSON batching (``POST /$batch``, ≤ 20 requests each).

Each inner request is built by msgraph-sdk's own request builders
(``items.to_post_request_information``, ``fields.to_patch_request_information``), so the
URL, headers and body are the SDK's, with the typed models (``ListItem``,
``FieldValueSet``) serialised by kiota. The batch envelope is assembled here and sent
through the same ``GraphRequestAdapter`` (authentication, Warden's resilient transport,
error mapping); inner answers are read back into the typed models with kiota's
``JsonParseNode``.

Why not msgraph-sdk's ``graph_client.batch`` (msgraph-core ``BatchRequestContent``)? With
the versions pinned here (msgraph-core 1.5, kiota-serialization-json 1.16) it reads an
inner answer's body with ``get_bytes_value()``, which drops JSON object bodies
(microsoft/kiota-python#737; msgraph-sdk-python-core#835), so created items' ids would be
lost, and it writes ``depends_on`` rather than ``dependsOn``. The wire format is small and
pinned by ``contracts/msgraph-v1.0-supplement.openapi.yaml`` (``BatchRequest``).

Answers per inner request: 2xx is done; 429 and 503 are sent again, alone, in a new batch
after the longest ``Retry-After`` among them (at most ``THROTTLE_ROUNDS`` times, and never
waiting beyond ``MAX_WAIT``); 412 on an update is re-applied with ``update_item_fields``
(read, change, write under If-Match) when the update carries a ``change``, else surfaced.
Anything left unfinished raises ``BatchIncomplete`` after every other request has been
answered, with what was written, so a caller never loses the ids of items made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_service_client import GraphServiceClient

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status
from graph.sharepoint import FieldChange, ItemFields, ListRef, call, update_item_fields

MAX_REQUESTS = 20
"""Graph's limit of requests in one batch."""

CONCURRENT_BATCHES = 4
"""Batches in flight at once for one call."""

THROTTLE_ROUNDS = 5
"""How many times throttled inner requests are sent again."""

MAX_WAIT = 30.0
"""The longest inner ``Retry-After`` waited out here; longer ones go back to the outbox."""

_RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class ItemUpdate:
    """One item's new field values; ``etag`` sends If-Match; ``change`` re-applies on 412."""

    item_id: str
    fields: Mapping[str, Any]
    etag: str | None = None
    change: FieldChange | None = None


@dataclass(frozen=True)
class _Answer:
    """One inner answer: status, headers, JSON body."""

    status: int
    headers: dict[str, str]
    body: Any


class BatchIncomplete(DeliveryError):
    """Some inner requests failed: ``failures`` maps their index to the status.

    ``results`` holds, by index, what the others wrote (None where nothing was).
    """

    def __init__(
        self, what: str, failures: dict[int, int], results: Sequence[Any], retry_after: float | None
    ) -> None:
        """Summarise the worst failure as the outcome (retry beats fail)."""
        statuses = sorted(set(failures.values()))
        outcomes = [classify_status(status) for status in statuses]
        outcome = next((o for o in outcomes if o is not Outcome.FAIL), outcomes[0])
        super().__init__(
            f"Graph batch {what}: {len(failures)} of {len(results)} failed ({statuses})",
            outcome=outcome,
            status=statuses[0],
            retry_after=retry_after,
        )
        self.failures = failures
        self.results = list(results)


@dataclass
class _Round:
    """The inner requests still to send, by index, and the answers so far."""

    pending: dict[int, RequestInformation]
    answers: dict[int, _Answer] = field(default_factory=dict)


async def batch_create_items(
    graph: GraphServiceClient, ref: ListRef, items: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Create one list item per field mapping; their ids, in the order given."""
    builder = graph.sites.by_site_id(ref.site_id).lists.by_list_id(ref.list_id).items
    requests = {
        index: builder.to_post_request_information(
            ListItem(fields=FieldValueSet(additional_data=dict(values)))
        )
        for index, values in enumerate(items)
    }
    answers = await _send_all(graph, requests)
    ids = [
        str(_parse(answer.body, ListItem).id or "") if 200 <= answer.status < 300 else None
        for answer in (answers[index] for index in range(len(items)))
    ]
    _raise_failures("create items", answers, ids)
    return [item_id or "" for item_id in ids]


async def batch_update_items(
    graph: GraphServiceClient, ref: ListRef, updates: Sequence[ItemUpdate]
) -> list[ItemFields]:
    """Write each update's fields (``PATCH .../items/{id}/fields``); the items as written.

    A 412 (someone changed the item since ``etag``) is re-applied through
    ``update_item_fields`` when the update has a ``change``; otherwise it is surfaced in
    ``BatchIncomplete`` (status 412, outcome RETRY).
    """
    items = graph.sites.by_site_id(ref.site_id).lists.by_list_id(ref.list_id).items
    requests = {}
    for index, update in enumerate(updates):
        config: RequestConfiguration[Any] = RequestConfiguration()
        if update.etag:
            config.headers.add("If-Match", update.etag)
        fields = items.by_list_item_id(update.item_id).fields
        body = FieldValueSet(additional_data=dict(update.fields))
        requests[index] = fields.to_patch_request_information(body, config)
    answers = await _send_all(graph, requests)
    results: list[ItemFields | None] = []
    for index, update in enumerate(updates):
        answer = answers[index]
        if 200 <= answer.status < 300:
            results.append(_written(update.item_id, _parse(answer.body, FieldValueSet)))
        elif answer.status == 412 and update.change is not None:
            redone = await update_item_fields(graph, ref, update.item_id, update.change)
            answers[index] = _Answer(200, {}, None)
            results.append(redone)
        else:
            results.append(None)
    _raise_failures("update items", answers, results)
    return [item for item in results if item is not None]


async def _send_all(
    graph: GraphServiceClient, requests: Mapping[int, RequestInformation]
) -> dict[int, _Answer]:
    """Every request answered (throttled ones sent again); answers by index."""
    state = _Round(dict(requests))
    for _ in range(THROTTLE_ROUNDS + 1):
        await _send_round(graph, state)
        throttled = {i: a for i, a in state.answers.items() if a.status in _RETRY_STATUSES}
        if not throttled:
            break
        waits = [server_delay(httpx.Headers(a.headers)) for a in throttled.values()]
        wait = max((w for w in waits if w is not None), default=1.0)
        if wait > MAX_WAIT:
            break
        await asyncio.sleep(wait)
        state.pending = {i: requests[i] for i in throttled}
    return state.answers


async def _send_round(graph: GraphServiceClient, state: _Round) -> None:
    """Send ``state.pending`` in batches of ``MAX_REQUESTS``, a few at a time."""
    indexes = sorted(state.pending)
    chunks = [indexes[at : at + MAX_REQUESTS] for at in range(0, len(indexes), MAX_REQUESTS)]
    gate = asyncio.Semaphore(CONCURRENT_BATCHES)

    async def one(chunk: list[int]) -> None:
        async with gate:
            found = await _post_batch(graph, {i: state.pending[i] for i in chunk})
        state.answers.update(found)

    await asyncio.gather(*(one(chunk) for chunk in chunks))


async def _post_batch(
    graph: GraphServiceClient, requests: Mapping[int, RequestInformation]
) -> dict[int, _Answer]:
    """One ``POST /$batch`` through the SDK's adapter; answers by index."""
    adapter = graph.request_adapter
    base = adapter.base_url.rstrip("/")
    parts = []
    for index, request in requests.items():
        request.path_parameters["baseurl"] = ""  # inner URLs are relative to the version
        url = request.url
        headers = request.request_headers or {}
        method = request.http_method.value if request.http_method else "GET"
        head = {"id": str(index), "method": method, "url": url}
        text = json.dumps({**head, "headers": headers})
        if request.content:
            text = text[:-1] + ', "body": ' + request.content.decode() + "}"
        parts.append(text)
    info = RequestInformation(Method.POST, "{+baseurl}/$batch", {"baseurl": base})
    info.headers.try_add("Content-Type", "application/json")
    info.headers.try_add("Accept", "application/json")
    info.content = ('{"requests": [' + ", ".join(parts) + "]}").encode()
    errors: dict[str, Any] = {"XXX": ODataError}
    send: Any = adapter.send_primitive_async  # typed ``-> None`` by kiota-abstractions
    raw = await call("batch", send(info, "bytes", errors))
    answers: dict[int, _Answer] = {}
    for entry in json.loads(raw or b"{}").get("responses", []):
        index = int(entry["id"])
        headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
        answers[index] = _Answer(int(entry["status"]), headers, entry.get("body"))
    missing = set(requests) - set(answers)
    if missing:
        raise DeliveryError(
            f"Graph batch answered without {len(missing)} of its requests", outcome=Outcome.RETRY
        )
    return answers


def _parse(body: Any, model: Any) -> Any:
    """An inner JSON body as the typed model (kiota's parse node)."""
    return JsonParseNode(body if isinstance(body, dict) else {}).get_object_value(model)


def _written(item_id: str, fields: FieldValueSet) -> ItemFields:
    """Our view of a PATCHed fieldValueSet."""
    values = dict(fields.additional_data or {})
    etag = str(values.pop("@odata.etag", ""))
    kept = {k: v for k, v in values.items() if not k.startswith("@odata.")}
    return ItemFields(item_id, etag, kept)


def _raise_failures(what: str, answers: Mapping[int, _Answer], results: Sequence[Any]) -> None:
    """``BatchIncomplete`` when any answer is not a 2xx."""
    failures = {i: a.status for i, a in answers.items() if not 200 <= a.status < 300}
    if not failures:
        return
    waits = [server_delay(httpx.Headers(answers[i].headers)) for i in failures]
    retry_after = max((w for w in waits if w is not None), default=None)
    raise BatchIncomplete(what, failures, results, retry_after)
