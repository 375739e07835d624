"""Composition of Warden's roles: the map from settings and the Graph resolver behind it.

Called by ``app.create_app``; the one :class:`bot.roles.RoleGate` it returns is shared by the
bot, the triage desk and the evidence desk, so a person's roles are asked of Graph once per
cache period whatever they click.
"""

from __future__ import annotations

import logging

from bot.roles import RoleGate
from connectors.sentinel.connection import SentinelConnection, tls_verify
from core.breaker import Breakers
from core.roles import Role, RoleMap
from core.settings import Mode, Settings

log = logging.getLogger(__name__)


def role_gate(
    settings: Settings, breakers: Breakers, sentinel: SentinelConnection | None
) -> RoleGate:
    """The role check: Graph asked through Warden's Azure credential when any role is mapped
    (without one, mapped roles are refused: fail closed)."""
    role_map = RoleMap.from_settings(settings.roles, sandbox=settings.mode is Mode.SANDBOX)
    open_roles = [role.value for role in Role if not role_map.mapped(role)]
    if open_roles and settings.mode is Mode.PRODUCTION:
        log.warning("roles open to anyone (no group or app role mapped): %s", open_roles)
    if not role_map.any_mapped or sentinel is None:
        return RoleGate(role_map)
    from graph.client import graph_client, graph_http  # Graph only when a role is mapped
    from graph.roles import RoleResolver

    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    resolver = RoleResolver(
        graph,
        role_map,
        service_principal_id=settings.roles.service_principal_id,
        ttl=settings.roles.cache_seconds,
        http=http,
    )
    return RoleGate(role_map, resolver)
