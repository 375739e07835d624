"""Specification of Warden's roles: the mapping from settings, grants, and the role table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.roles import VERB_ROLES
from cards.commands import COMMANDS
from cards.verbs import CardVerb
from core.errors import SettingsError
from core.roles import HeldAppRole, Role, RoleMap, SourceKind, everyone, grants
from core.settings import load_settings
from core.settings.roles import RolesSettings

ROOT = Path(__file__).resolve().parents[2]
SOC = "6f1c2e8a-41a4-4c57-9a55-0c1f4d1b2e77"
AUDIT = "0b5d7a3c-9e21-4f8b-a6d4-3c2e1f0a9b88"
ROLES = RoleMap(
    groups={Role.RESPONDER: (SOC,), Role.AUDITOR: (AUDIT,)},
    app_roles={
        Role.REVIEWER: ("Warden.Reviewer",),
        Role.OPERATOR: ("b1f1c0de-0000-4000-8000-0000000000aa",),
    },
)


def test_grants_group_member_holds_role_named_by_group() -> None:
    """A member of a mapped group holds its role, explained by the group's name."""
    answer = grants(ROLES, [SOC.upper()], [], {SOC: "SOC Responders"})
    grant = answer.first(Role.RESPONDER)
    assert grant is not None and grant.explain() == "group SOC Responders (Entra)"
    assert not answer.holds(Role.AUDITOR)


def test_grants_app_role_by_value_or_id_holds_role() -> None:
    """An app role matches the mapping by its value, or by its id when the id is mapped."""
    held = [
        HeldAppRole("Warden.Reviewer", "a-1", via_group="Compliance"),
        HeldAppRole("Warden.Operator", "B1F1C0DE-0000-4000-8000-0000000000AA"),
    ]
    answer = grants(ROLES, [], held)
    reviewer = answer.first(Role.REVIEWER)
    assert reviewer is not None
    assert reviewer.explain() == "app role Warden.Reviewer through group Compliance"
    assert answer.holds(Role.OPERATOR)
    assert not answer.holds(Role.RESPONDER)


def test_grants_unrelated_groups_and_roles_hold_nothing() -> None:
    """Groups and app roles that are not mapped grant nothing."""
    answer = grants(ROLES, [AUDIT.replace("0b", "0c")], [HeldAppRole("Other.Role", "x")])
    assert not any(answer.holds(role) for role in Role)


def test_grants_unmapped_role_is_open_to_anyone() -> None:
    """A role mapped to no group or app role is held by anyone, and says so."""
    partial = RoleMap(groups={Role.RESPONDER: (SOC,)})
    answer = grants(partial, [], [])
    grant = answer.first(Role.OPERATOR)
    assert grant is not None and grant.kind is SourceKind.OPEN
    assert not answer.holds(Role.RESPONDER)


def test_everyone_sandbox_without_mapping_every_role_is_sandbox_grant() -> None:
    """Sandbox mode with nothing mapped: every role, explained as the sandbox's."""
    answer = everyone(RoleMap(sandbox=True))
    assert {answer.first(role).kind for role in Role} == {SourceKind.SANDBOX}  # type: ignore[union-attr]


def test_denial_names_role_and_how_to_get_it() -> None:
    """A denial names the role, the groups to join and the app roles to be assigned."""
    both = RoleMap(groups={Role.REVIEWER: (SOC,)}, app_roles={Role.REVIEWER: ("Warden.Reviewer",)})
    text = both.denial(Role.REVIEWER, "decide on evidence", {SOC: "Reviewers"})
    assert text.startswith("Only people with Warden's Reviewer role can decide on evidence")
    assert "add you to group Reviewers" in text
    assert "assign you app role Warden.Reviewer on Warden's enterprise application" in text


def test_grant_record_keeps_role_source_and_group() -> None:
    """The recorded grant is the role, the source kind, and the group's id and name."""
    grant = grants(ROLES, [SOC], [], {SOC: "SOC"}).first(Role.RESPONDER)
    assert grant is not None
    assert grant.record() == {"role": "responder", "source": "group", "id": SOC, "name": "SOC"}


def test_settings_responder_group_ids_alias_adds_to_roles(tmp_path: Path) -> None:
    """The older WARDEN_RESPONDER_GROUP_IDS still maps the responder role (and its cache)."""
    settings = load_settings(
        var_dir=tmp_path, responder_group_ids=SOC.upper(), responder_cache_seconds=7
    )
    assert settings.roles.responder_groups == [SOC]
    assert settings.roles.cache_seconds == 7


def test_settings_app_roles_without_service_principal_stop_start(tmp_path: Path) -> None:
    """App roles without Warden's service principal id stop start-up naming the variable."""
    with pytest.raises(SettingsError, match="WARDEN_ROLES__SERVICE_PRINCIPAL_ID"):
        load_settings(var_dir=tmp_path, roles={"reviewer_app_roles": "Warden.Reviewer"})


def test_settings_group_not_a_guid_is_refused() -> None:
    """A group given by name rather than object id is refused."""
    with pytest.raises(ValueError, match="not a group's object id"):
        RolesSettings.model_validate({"operator_groups": "SOC Operators"})


def test_verb_roles_every_card_verb_has_an_entry() -> None:
    """Every card verb says which role it needs (None: anyone), so none is left unchecked."""
    assert set(VERB_ROLES) == set(CardVerb)


def test_roles_doc_table_matches_command_roles() -> None:
    """The operator guide's table gives each command the role the command table needs."""
    doc = (ROOT / "docs" / "operator" / "roles.md").read_text(encoding="utf-8")
    for command in COMMANDS:
        row = next(
            line
            for line in doc.splitlines()
            if line.startswith("|") and re.search(rf"`{command.name}`", line)
        )
        needed = command.role.value if command.role is not None else "anyone"
        assert row.split("|")[2].strip().startswith(needed), command.name
