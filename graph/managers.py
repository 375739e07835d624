"""Who an evidence owner reports to: Graph ``GET /users/{id}/manager``, for escalations.

Graph answers the manager as a directory object (a user, with its display name), or 404
when the user has none (or is not in the directory). Any other failure raises
``ManagerLookupUnavailable`` so the caller retries later instead of escalating to no one.
"""

from __future__ import annotations

import logging

from kiota_abstractions.api_error import APIError
from msgraph.graph_service_client import GraphServiceClient

from core.errors import DeliveryError
from core.evidence_reminders import Manager, ManagerLookupUnavailable

log = logging.getLogger(__name__)


class Managers:
    """``manager_of(user)``: the user's manager in Entra ID, through msgraph-sdk."""

    def __init__(self, graph: GraphServiceClient) -> None:
        self._graph = graph

    async def manager_of(self, user: str) -> Manager | None:
        """The manager of ``user`` (object id or UPN), or None when the user has none;
        the display name is the id when Graph gives none."""
        try:
            found = await self._graph.users.by_user_id(user).manager.get()
        except APIError as exc:
            if exc.response_status_code == 404:
                return None
            log.warning("manager lookup failed: Graph answered %s", exc.response_status_code)
            raise ManagerLookupUnavailable(str(exc.response_status_code)) from None
        except DeliveryError as exc:
            log.warning("manager lookup failed: %s", exc)
            raise ManagerLookupUnavailable(str(exc)) from None
        if found is None or not found.id:
            return None
        name = getattr(found, "display_name", None)
        return Manager(found.id, name if isinstance(name, str) and name else found.id)
