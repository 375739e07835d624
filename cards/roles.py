"""The roles cards: ``whoami`` (each role, held or not, and where it comes from) and the
denial a person reads when an action needs a role they do not hold.

Pure functions of :mod:`core.roles` values; group names come from the directory and pass
through :func:`cards.text.inert` as any text Warden did not write.
"""

from __future__ import annotations

from collections.abc import Mapping

from cards.elements import JSON, adaptive_card, container, text_block
from cards.text import inert
from core.roles import Role, RoleAnswer, RoleMap, SourceKind


def whoami_card(
    name: str | None,
    answer: RoleAnswer,
    role_map: RoleMap,
    names: Mapping[str, str] | None = None,
) -> JSON:
    """The person's roles: one line per role, ✓ with each source or ✗ with how to get it."""
    who = inert(name or "") or "you"
    body: list[JSON] = [
        text_block(f"Warden roles of {who}", size="large", weight="bolder", style="heading")
    ]
    sandboxed = any(g.kind is SourceKind.SANDBOX for found in answer.grants.values() for g in found)
    if sandboxed:
        body.append(
            text_block(
                "Sandbox mode: no roles are configured, so everyone has every role.",
                isSubtle=True,
            )
        )
    for role in Role:
        body.append(_role_block(role, answer, role_map, names or {}))
    return adaptive_card(body)


def _role_block(
    role: Role, answer: RoleAnswer, role_map: RoleMap, names: Mapping[str, str]
) -> JSON:
    """One role: its name, held or not, its sources (or how to get it), what it allows."""
    found = answer.grants.get(role, ())
    mark, colour = ("\u2713", "good") if found else ("\u2717", "attention")
    lines: list[JSON] = [
        text_block(f"{mark} {role.title}", weight="bolder", color=colour, spacing="medium"),
        text_block(role.purpose, isSubtle=True, size="small", spacing="none"),
    ]
    if found:
        sources = "; ".join(inert(grant.explain()) for grant in found)
        lines.append(text_block(f"From: {sources}", size="small", spacing="none"))
    else:
        how = inert(role_map.how_to_get(role, names))
        lines.append(text_block(how, size="small", spacing="none"))
    return container(lines)


def denied_card(role: Role, message: str) -> JSON:
    """A friendly refusal: the role needed, and ``message`` (what it is for, how to get it)."""
    return adaptive_card(
        [
            container(
                [
                    text_block(
                        f"You need Warden's {role.title} role", weight="bolder", color="attention"
                    ),
                    text_block(inert(message)),
                    text_block(
                        "Type whoami to see your roles and where each comes from.",
                        isSubtle=True,
                        size="small",
                    ),
                ],
                style="attention",
            )
        ]
    )
