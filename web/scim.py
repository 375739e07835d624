"""``/scim/v2``: SCIM 2.0 provisioning (RFC 7643/7644) of Warden's roster by Entra ID.

Entra ID's provisioning service creates, updates, deactivates and deletes the people and
groups of Warden's roster here, so people who never messaged the bot are known, and a leaver
is disabled at once (their pending evidence requests move to their manager or a group, in
the same transaction: ``core.store.roster_leavers``). Payloads are read, filtered, sorted
and patched with scim2-models under ``web.scim_models.provider``; the edge
(``web.scim_edge``) checks the bearer token and answers every refusal as a SCIM Error.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web
from scim2_models import (
    Context,
    Group,
    ListResponse,
    NotFoundException,
    PatchOp,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimProvider,
    SearchRequest,
)
from scim2_models.path import CompareOperator, Comparison

from core.errors import RosterVersionMismatch
from core.settings.scim import ScimSettings
from core.store import roster
from core.store.roster import GROUP, USER, Reassign, RosterRecord
from core.store.store import Store
from web.scim_edge import bearer_middleware, read_body, scim_errors, scim_response
from web.scim_models import (
    ENDPOINTS,
    MODELS,
    UserE,
    entra_patch,
    entra_resource,
    etag,
    provider,
    to_resource,
    to_write,
)

PREFIX = "/scim/v2"
PATCH_ATTEMPTS = 3
_INDEXED = {(USER, "username"), (GROUP, "displayname")}


class ScimService:
    """The SCIM resources and discovery endpoints over the roster in ``store``."""

    def __init__(
        self, store: Store, settings: ScimSettings, *, on_leaver: Reassign | None = None
    ) -> None:
        self._store = store
        self._max = settings.max_results
        self._tokens = [token.get_secret_value() for token in settings.tokens]
        self._provider: ScimProvider = provider(settings.max_results)
        self._on_leaver = on_leaver

    def app(self) -> web.Application:
        """The sub-application to mount at ``/scim/v2``."""
        app = web.Application(middlewares=[scim_errors, bearer_middleware(self._tokens)])
        app.router.add_get("/ServiceProviderConfig", self.config)
        app.router.add_get("/Schemas", self.schemas)
        app.router.add_get("/Schemas/{id}", self.schema)
        app.router.add_get("/ResourceTypes", self.resource_types)
        app.router.add_get("/ResourceTypes/{id}", self.resource_type)
        app.router.add_post("/.search", self.search_all)
        for kind, endpoint in ENDPOINTS.items():
            app.router.add_get(f"/{endpoint}", self._bind(self.list_resources, kind))
            app.router.add_post(f"/{endpoint}", self._bind(self.create, kind))
            app.router.add_post(f"/{endpoint}/.search", self._bind(self.search, kind))
            app.router.add_get(f"/{endpoint}/{{id}}", self._bind(self.get, kind))
            app.router.add_put(f"/{endpoint}/{{id}}", self._bind(self.replace, kind))
            app.router.add_patch(f"/{endpoint}/{{id}}", self._bind(self.patch, kind))
            app.router.add_delete(f"/{endpoint}/{{id}}", self._bind(self.delete, kind))
        return app

    @staticmethod
    def _bind(handler: Any, kind: str) -> Any:
        async def bound(request: web.Request) -> web.StreamResponse:
            answer: web.StreamResponse = await handler(request, kind)
            return answer

        return bound

    async def config(self, request: web.Request) -> web.Response:
        """``GET /ServiceProviderConfig``."""
        assert self._provider.config is not None
        config = self._provider.config.model_copy()
        return scim_response(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    async def schemas(self, request: web.Request) -> web.Response:
        """``GET /Schemas``."""
        return _listed(Schema, list(self._provider.schemas))

    async def schema(self, request: web.Request) -> web.Response:
        """``GET /Schemas/{id}``."""
        wanted = request.match_info["id"].casefold()
        found = [s for s in self._provider.schemas if str(s.id).casefold() == wanted]
        return _single(found, f"no schema {request.match_info['id']}")

    async def resource_types(self, request: web.Request) -> web.Response:
        """``GET /ResourceTypes``."""
        return _listed(ResourceType, list(self._provider.resource_types))

    async def resource_type(self, request: web.Request) -> web.Response:
        """``GET /ResourceTypes/{id}``."""
        wanted = request.match_info["id"].casefold()
        found = [t for t in self._provider.resource_types if str(t.id).casefold() == wanted]
        return _single(found, f"no resource type {request.match_info['id']}")

    async def list_resources(self, request: web.Request, kind: str) -> web.Response:
        """``GET /Users`` or ``/Groups``: filter, sort, page (``startIndex``, ``count``)."""
        query = {key: value for key, value in request.query.items()}
        search = _of(SearchRequest, MODELS[kind]).model_validate(
            query, scim_ctx=Context.SEARCH_REQUEST, scim_provider=self._provider
        )
        return await self._answer(request, [kind], search)

    async def search_all(self, request: web.Request) -> web.Response:
        """``POST /.search``: people and groups at once."""
        search = _of(SearchRequest, UserE | Group).model_validate(
            await read_body(request), scim_ctx=Context.SEARCH_REQUEST, scim_provider=self._provider
        )
        return await self._answer(request, [USER, GROUP], search)

    async def search(self, request: web.Request, kind: str) -> web.Response:
        """``POST /Users/.search`` or ``/Groups/.search``: a SearchRequest body."""
        search = _of(SearchRequest, MODELS[kind]).model_validate(
            await read_body(request), scim_ctx=Context.SEARCH_REQUEST, scim_provider=self._provider
        )
        return await self._answer(request, [kind], search)

    async def _answer(self, request: web.Request, kinds: list[str], search: Any) -> web.Response:
        base = _base_url(request)
        found = [
            to_resource(record, base)
            for kind in kinds
            for record in await self._candidates(kind, search.filter)
        ]
        if search.filter is not None:
            found = [resource for resource in found if search.filter.match(resource)]
        if search.sort_by is not None:
            found = search.sort(found)
        start = search.start_index_0 or 0
        count = self._max if search.count is None else min(search.count, self._max)
        page = found[start : start + count]
        listed = _of(ListResponse, UserE | Group)(
            total_results=len(found),
            start_index=start + 1,
            items_per_page=len(page),
            resources=page,
        )
        return scim_response(
            listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search)
        )

    async def _candidates(self, kind: str, scim_filter: Any) -> list[RosterRecord]:
        """The records a filter can match: one indexed lookup for ``eq`` on a key, else all."""
        node = getattr(scim_filter, "ast", None)
        if isinstance(node, Comparison) and node.op is CompareOperator.eq:
            path = node.attr_path
            name = path.attr.casefold()
            if path.sub_attr is None and isinstance(node.value, str):
                if (kind, name) in _INDEXED:
                    return await roster.find(self._store, kind, name=node.value)
                if name == "externalid":
                    return await roster.find(self._store, kind, external_id=node.value)
        return await roster.find(self._store, kind)

    async def get(self, request: web.Request, kind: str) -> web.Response:
        """``GET /Users/{id}``: ``attributes``/``excludedAttributes`` select what is shown."""
        record = await self._record(request, kind)
        return self._shown(request, record, Context.RESOURCE_QUERY_RESPONSE)

    async def create(self, request: web.Request, kind: str) -> web.Response:
        """``POST /Users`` or ``/Groups``: 201 with the stored resource."""
        body = entra_resource(await read_body(request))
        resource = MODELS[kind].model_validate(
            body, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_provider=self._provider
        )
        record = await roster.create(self._store, to_write(kind, resource))
        answer = self._shown(request, record, Context.RESOURCE_CREATION_RESPONSE, status=201)
        answer.headers["Location"] = f"{_base_url(request)}/{ENDPOINTS[kind]}/{record.id}"
        return answer

    async def replace(self, request: web.Request, kind: str) -> web.Response:
        """``PUT /Users/{id}``: the whole resource, once ``If-Match`` (if sent) holds."""
        body = entra_resource(await read_body(request))
        resource = MODELS[kind].model_validate(
            body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_provider=self._provider
        )
        current = await self._record(request, kind)
        _check_if_match(request, current)
        record = await self._write(kind, current, to_write(kind, resource))
        return self._shown(request, record, Context.RESOURCE_REPLACEMENT_RESPONSE)

    async def patch(self, request: web.Request, kind: str) -> web.Response:
        """``PATCH /Users/{id}``: PatchOp applied to the stored resource, Entra's way too."""
        body = entra_patch(await read_body(request))
        operations = _of(PatchOp, MODELS[kind]).model_validate(
            body, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_provider=self._provider
        )
        for attempt in range(PATCH_ATTEMPTS):
            current = await self._record(request, kind)
            _check_if_match(request, current)
            resource = to_resource(current, _base_url(request))
            with self._provider:
                operations.patch(resource)
            try:
                record = await self._write(kind, current, to_write(kind, resource))
            except RosterVersionMismatch:
                if "If-Match" in request.headers or attempt == PATCH_ATTEMPTS - 1:
                    raise
                continue
            return self._shown(request, record, Context.RESOURCE_PATCH_RESPONSE)
        raise AssertionError("unreachable")  # pragma: no cover

    async def delete(self, request: web.Request, kind: str) -> web.Response:
        """``DELETE /Users/{id}``: 204; a deleted active person is a leaver first."""
        current = await self._record(request, kind)
        _check_if_match(request, current)
        await roster.delete_record(self._store, kind, current.id, on_leaver=self._on_leaver)
        return web.Response(status=204)

    async def _record(self, request: web.Request, kind: str) -> RosterRecord:
        record = await roster.get(self._store, kind, request.match_info["id"])
        if record is None:
            raise NotFoundException(detail=f"no {kind} {request.match_info['id']}")
        return record

    async def _write(self, kind: str, current: RosterRecord, write: Any) -> RosterRecord:
        return await roster.replace_record(
            self._store,
            kind,
            current.id,
            write,
            if_version=current.version,
            on_leaver=self._on_leaver,
        )

    def _shown(
        self, request: web.Request, record: RosterRecord, ctx: Context, status: int = 200
    ) -> web.Response:
        model = MODELS[record.kind]
        shown = _of(ResponseParameters, model).model_validate(
            dict(request.query), scim_provider=self._provider
        )
        resource = to_resource(record, _base_url(request))
        body = resource.model_dump(scim_ctx=ctx, response_parameters=shown)
        return scim_response(body, status, headers={"ETag": etag(record)})


def _of(generic: Any, model: Any) -> Any:
    """``generic[model]`` for a model chosen at run time (a resource type, or a union)."""
    return cast(Any, generic)[model]


def _check_if_match(request: web.Request, record: RosterRecord) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is not None and wanted.strip() not in ("*", etag(record), etag(record)[2:]):
        raise PreconditionFailedException(detail=f"the resource is at {etag(record)}")


def _base_url(request: web.Request) -> str:
    return f"{request.url.origin()}{PREFIX}"


def _listed(model: type[Resource[Any]], items: list[Any]) -> web.Response:
    listed = _of(ListResponse, model)(
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return scim_response(listed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _single(found: list[Any], detail: str) -> web.Response:
    if not found:
        raise NotFoundException(detail=detail)
    return scim_response(found[0].model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
