"""Delta queries of the Graph sandbox: what changed in a list or a library since a token.

``GET /v1.0/sites/{site}/lists/{list}/items/delta`` (listItem: delta) and
``GET /v1.0/drives/{drive}/root/delta`` (driveItem: delta), with or without the SDK's
``delta()`` parentheses. Without ``token`` the answer enumerates every item (no deleted
ones); with the token of an earlier ``@odata.deltaLink`` it holds each item changed since,
once, in its latest state, and removed items with the ``deleted`` facet. Pages of ``$top``
items (default 200) chain with ``@odata.nextLink``; the last page carries
``@odata.deltaLink`` (``?token=...``). A change made while a client pages is left for its
next delta round, never skipped.

A token of another epoch (``POST /_sandbox/delta/expire`` starts a new one) or one the
sandbox cannot read answers ``410 Gone`` with ``resyncChangesApplyDifferences`` and a
``Location`` header holding a fresh enumeration's URL, as Graph does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.arm_records import GraphError
from sandbox.graph_store import SharePointStore, SpList, invalid

DEFAULT_PAGE = 200
"""Changes per page when ``$top`` is absent."""

RESYNC_CODE = "resyncChangesApplyDifferences"
RESYNC_MESSAGE = (
    "Resync required. Replace any local items with the server's version (including deletes) "
    "if you're sure that the service was up to date with your local changes when you last "
    "sync'd. Upload any local changes that the server doesn't know about."
)

LATEST = "latest"
"""``token=latest``: an empty page whose deltaLink starts from now."""

Render = Callable[[Any], dict[str, Any]]
"""Renders one current item (listItem or driveItem) as its JSON."""


@dataclass(frozen=True)
class Cursor:
    """Where a delta page starts: changes after ``after`` up to ``upto``; ``fresh`` when the
    enumeration started without a token (so deleted items are left out)."""

    epoch: int
    after: int
    upto: int
    fresh: bool

    def encode(self) -> str:
        """The opaque ``$skiptoken`` of this cursor."""
        raw = json.dumps([self.epoch, self.after, self.upto, self.fresh]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Read a ``$skiptoken``; ValueError when it is not one of ours."""
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        epoch, after, upto, fresh = json.loads(raw)
        return cls(int(epoch), int(after), int(upto), bool(fresh))


def delta_token(epoch: int, seq: int) -> str:
    """The ``token`` of a deltaLink: changes after change number ``seq`` of ``epoch``."""
    return base64.urlsafe_b64encode(f"{epoch}.{seq}".encode()).decode().rstrip("=")


def _token_seq(token: str, epoch: int) -> int | None:
    """The change number a token stands for, or None when it is expired or foreign."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        found_epoch, seq = (int(part) for part in raw.split("."))
    except ValueError:
        return None
    return seq if found_epoch == epoch else None


def _resync(request: web.Request) -> GraphError:
    """410 Gone with the URL of a fresh enumeration in ``Location``."""
    fresh = request.url.with_query(
        [(k, v) for k, v in request.query.items() if k.lower() not in ("token", "$skiptoken")]
    )
    return GraphError(410, RESYNC_CODE, RESYNC_MESSAGE, {"Location": str(fresh)})


def _cursor(request: web.Request, store: SharePointStore, target: SpList) -> Cursor:
    """The cursor a request asks for (first page, next page or a token); 410 when stale."""
    epoch, skip = store.delta_epoch, request.query.get("$skiptoken")
    token = request.query.get("token")
    if skip is not None:
        try:
            cursor = Cursor.decode(skip)
        except ValueError:
            raise _resync(request) from None
        if cursor.epoch != epoch:
            raise _resync(request)
        return cursor
    if token is None:
        return Cursor(epoch, -1, target.change_seq, fresh=True)
    if token == LATEST:
        return Cursor(epoch, target.change_seq, target.change_seq, fresh=False)
    seq = _token_seq(token, epoch)
    if seq is None or seq > target.change_seq:
        raise _resync(request)
    return Cursor(epoch, seq, target.change_seq, fresh=False)


def _top(request: web.Request) -> int:
    """The page size (``$top``, 1..999)."""
    raw = request.query.get("$top")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 0 < int(raw) <= 999:
        raise invalid(f"Invalid value '{raw}' for $top.")
    return int(raw)


def delta_page(
    request: web.Request,
    store: SharePointStore,
    target: SpList,
    current: list[Any],
    kind: str,
    render: Render,
) -> web.Response:
    """One page of changes of ``current`` items (each with ``seq``) and ``kind`` tombstones."""
    cursor = _cursor(request, store, target)
    found: list[tuple[int, dict[str, Any] | Any]] = [
        (item.seq, item) for item in current if cursor.after < item.seq <= cursor.upto
    ]
    if not cursor.fresh:
        found += [
            (stone["seq"], stone)
            for stone in target.tombstones
            if stone["kind"] == kind and cursor.after < stone["seq"] <= cursor.upto
        ]
    found.sort(key=lambda pair: pair[0])
    page = found[: _top(request)]
    body: dict[str, Any] = {"value": [_render(entry, render) for _, entry in page]}
    keep = [(k, v) for k, v in request.query.items() if k.lower() not in ("token", "$skiptoken")]
    if len(page) < len(found):
        after = Cursor(cursor.epoch, page[-1][0], cursor.upto, cursor.fresh)
        body["@odata.nextLink"] = str(
            request.url.with_query([*keep, ("$skiptoken", after.encode())])
        )
    else:
        token = delta_token(cursor.epoch, cursor.upto)
        body["@odata.deltaLink"] = str(request.url.with_query([*keep, ("token", token)]))
    return web.json_response(body)


def _render(entry: Any, render: Render) -> dict[str, Any]:
    """A current item's JSON, or a removed one's: its id (and name) with ``deleted``."""
    if not isinstance(entry, dict):
        return render(entry)
    gone: dict[str, Any] = {"id": entry["id"], "deleted": {"state": "deleted"}}
    if entry.get("name"):
        gone["name"] = entry["name"]
    return gone


def expire_tokens(store: SharePointStore) -> int:
    """Start a new delta epoch: every token handed out so far answers 410. The new epoch."""
    store.delta_epoch += 1
    return store.delta_epoch
