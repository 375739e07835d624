"""Who may triage: membership of the responder groups, asked of Graph and kept briefly.

``checkMemberGroups`` answers which of the given groups (at most 20 per call) a user is a
transitive member of. Answers are cached per user for ``ttl`` seconds, both ways, so a busy
channel costs Graph one call per person per few minutes. When Graph cannot answer, the check
fails closed: ``ResponderCheckUnavailable``, and the caller tells the person to try again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.users_request_builder import (  # noqa: F401 - load now, not on a click
    UsersRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from core.errors import DeliveryError, ResponderCheckUnavailable

log = logging.getLogger(__name__)

GRAPH_BATCH = 20
"""Graph checks at most this many groups per request."""


class ResponderGroups:
    """``is_responder(object_id)``: a member of any of ``group_ids`` (cached ``ttl`` seconds)."""

    def __init__(
        self,
        graph: GraphServiceClient,
        group_ids: Sequence[str],
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._graph = graph
        self._http = http
        self._groups = [g.lower() for g in group_ids]
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_responder(self, object_id: str) -> bool:
        """True when the user is a (transitive) member of one of the responder groups."""
        key = object_id.lower()
        known = self._cache.get(key)
        if known is not None and known[1] > self._clock():
            return known[0]
        member = await self._ask(key)
        self._cache[key] = (member, self._clock() + self._ttl)
        if len(self._cache) > 10_000:  # bound memory: drop the entries that expire first
            for stale in sorted(self._cache, key=lambda k: self._cache[k][1])[:1_000]:
                del self._cache[stale]
        return member

    async def aclose(self) -> None:
        """Close the HTTP client given as ``http`` (Graph's)."""
        if self._http is not None:
            await self._http.aclose()

    async def _ask(self, object_id: str) -> bool:
        user = self._graph.users.by_user_id(object_id)
        for start in range(0, len(self._groups), GRAPH_BATCH):
            body = CheckMemberGroupsPostRequestBody(
                group_ids=self._groups[start : start + GRAPH_BATCH]
            )
            try:
                answer = await user.check_member_groups.post(body)
            except APIError as exc:
                if exc.response_status_code == 404:
                    return False  # no such user in the directory: not a responder
                log.warning("responder check failed: Graph answered %s", exc.response_status_code)
                raise ResponderCheckUnavailable(str(exc.response_status_code)) from None
            except DeliveryError as exc:
                log.warning("responder check failed: %s", exc)
                raise ResponderCheckUnavailable(str(exc)) from None
            found = {g.lower() for g in (answer.value if answer and answer.value else [])}
            if found & set(self._groups):
                return True
        return False
