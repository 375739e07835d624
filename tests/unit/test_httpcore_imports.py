"""httpcore (under httpx: ARM, Graph, ServiceNow, Jira) imports ``sniffio`` in its request
path, several times a request; installed, that import is a lookup in ``sys.modules``, where
a missing one searches every ``sys.path`` entry and fails each time (about 70 µs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer


class _Searches(MetaPathFinder):
    """Records every module the import system goes looking for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        self.names.append(fullname)
        return None


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def test_httpx_requests_search_for_no_module() -> None:
    """Once warm, HTTP requests through httpx never make the import system search."""
    app = web.Application()
    app.router.add_get("/", _ok)
    searches = _Searches()
    async with TestServer(app) as server, httpx.AsyncClient() as client:
        url = str(server.make_url("/"))
        assert (await client.get(url)).json() == {"ok": True}  # warm: lazy imports done
        sys.meta_path.insert(0, searches)
        try:
            for _ in range(3):
                assert (await client.get(url)).status_code == 200
        finally:
            sys.meta_path.remove(searches)
    assert searches.names == []
