"""``GET /api/posture``: Warden's policy posture (``core.posture.PolicyPosture``) as JSON.

Optional filters ``?requirement=<id>`` and ``?status=<PostureStatus>``; paging with
``?limit=`` (1..500, default 100) and ``?cursor=`` (the ``x-next-cursor`` header of the
previous page; absent on the last page: a position in the list's order, so any value is a
valid cursor). A bad ``status`` or ``limit`` is a 400 problem naming it.

Access: when Warden accepts Entra bearers (``WARDEN_WEBHOOK_ENTRA_TENANT_IDS``), the route
requires one, checked exactly as the Sentinel webhook checks it (tenant, audience, signature),
else a 401 problem. Without that setting, in production mode the route answers 401 to every
caller (compliance data is never served unauthenticated); in sandbox mode it is open, like
``/metrics``, and must sit behind the platform's authentication if exposed.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import web

from core.catalog import Catalog
from core.posture import PostureStatus
from core.store.posture import posture
from core.store.store import Store
from web.problems import problem
from web.webhooks import BearerCheck

MAX_LIMIT = 500
"""The largest page a caller may ask for."""

NEXT_CURSOR = "x-next-cursor"
"""The response header naming the next page's cursor."""


class PostureApi:
    """Serves the posture read from ``store`` for ``catalog``'s requirements."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        *,
        bearer: BearerCheck | None,
        sandbox: bool,
    ) -> None:
        """``bearer``: the Entra check callers must pass (None: no bearer is accepted, so the
        route is open only in ``sandbox`` mode)."""
        self._store = store
        self._catalog = catalog
        self._bearer = bearer
        self._open = sandbox

    async def handle(self, request: web.Request) -> web.Response:
        """The posture records the query asks for, as a JSON list."""
        if not await self._allowed(request):
            return problem(
                401,
                "Unauthorized",
                "A valid Entra bearer token is required.",
                slug="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        query = request.query
        try:
            status = PostureStatus(query["status"]) if "status" in query else None
        except ValueError:
            allowed = ", ".join(s.value for s in PostureStatus)
            return _bad("status", f"status must be one of {allowed}")
        limit_text = query.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _bad("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
        cursor = unquote(query["cursor"]) if "cursor" in query else None
        page = await posture(
            self._store,
            self._catalog,
            requirement=query.get("requirement"),
            status=status,
            limit=int(limit_text),
            cursor=cursor,
        )
        body = [item.model_dump(mode="json", by_alias=True) for item in page.items]
        headers = {NEXT_CURSOR: quote(page.cursor, safe="")} if page.cursor is not None else None
        return web.json_response(body, headers=headers)

    async def _allowed(self, request: web.Request) -> bool:
        """True when the caller passes the bearer check (or the route is open)."""
        if self._bearer is None:
            return self._open
        return await self._bearer(request.headers.get("Authorization"))


def _bad(field: str, detail: str) -> web.Response:
    """A 400 problem naming the query parameter at fault."""
    return problem(400, "Invalid query parameter", detail, slug="invalid-query", field=field)
