"""Reviewer groups of the requirement catalog: who may decide on a requirement's evidence.

Beside Warden's reviewer role (``bot.roles``), each requirement names its own reviewer groups
(``core.catalog``); a decision needs both. Membership is asked of Graph
(``graph.responders.ResponderGroups``), cached, failing closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from core.catalog import Requirement


class MemberCheck(Protocol):
    """Membership of a set of groups (``graph.responders.ResponderGroups``)."""

    async def is_responder(self, object_id: str) -> bool:
        """True when the person is a member of one of the groups; raises when that cannot
        be told now."""

    async def aclose(self) -> None:
        """Release what the check holds open."""


class ReviewerGroups:
    """Who may request and decide: members of a requirement's reviewer groups.

    ``checker(group_ids)`` builds a membership check (``graph.responders.ResponderGroups``);
    one is kept per set of groups, so its cache is shared by requirements with the same ones.
    """

    def __init__(
        self,
        checker: Callable[[Sequence[str]], MemberCheck],
        *,
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._checker = checker
        self._close = close
        self._checks: dict[tuple[str, ...], MemberCheck] = {}

    async def is_reviewer(self, object_id: str, requirement: Requirement) -> bool:
        """True when ``object_id`` is a member of one of the requirement's reviewer groups."""
        return await self.is_member(object_id, [group.id for group in requirement.reviewers])

    async def is_member(self, object_id: str, group_ids: Sequence[str]) -> bool:
        """True when ``object_id`` is a member (transitively) of one of ``group_ids``."""
        groups = tuple(sorted(group_ids))
        check = self._checks.get(groups)
        if check is None:
            check = self._checks[groups] = self._checker(groups)
        return await check.is_responder(object_id)

    async def aclose(self) -> None:
        """Release the Graph connections."""
        await self._close()
