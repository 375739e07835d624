"""Samples of the roles cards (``whoami`` and the denial) for the golden-card tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cards.roles import denied_card, whoami_card
from core.roles import HeldAppRole, Role, RoleMap, everyone, grants

RESPONDERS = "3f1b2c4d-0000-4000-8000-000000000001"
AUDITORS = "3f1b2c4d-0000-4000-8000-000000000003"
NAMES = {RESPONDERS: "SOC Responders", AUDITORS: "Internal Audit"}
MAPPED = RoleMap(
    groups={Role.RESPONDER: (RESPONDERS,), Role.AUDITOR: (AUDITORS,)},
    app_roles={Role.REVIEWER: ("Warden.Reviewer",), Role.OPERATOR: ("Warden.Operator",)},
)


def _whoami_mixed() -> dict[str, Any]:
    """A responder by group and a reviewer by app role (through a group), nothing else."""
    held = [HeldAppRole("Warden.Reviewer", "a1", via_group="Compliance Team")]
    answer = grants(MAPPED, [RESPONDERS], held, NAMES)
    return whoami_card("Adele Vance", answer, MAPPED, NAMES)


ROLES_VARIANTS: dict[str, Callable[[], dict[str, Any]]] = {
    "whoami_mixed": _whoami_mixed,
    "whoami_sandbox": lambda: whoami_card(
        "Adele Vance", everyone(RoleMap(sandbox=True)), RoleMap(sandbox=True)
    ),
    "denied_operator": lambda: denied_card(
        Role.OPERATOR,
        MAPPED.denial(Role.OPERATOR, "subscribe conversations or administer Warden"),
    ),
}
"""Each roles card variant by golden name (``card_<name>.json``)."""
