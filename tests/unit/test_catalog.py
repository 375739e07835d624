"""The requirement catalog: the example loads, lookups work, every bad catalog names its line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import CATALOG, cli, create_app
from cli.common import console
from core.catalog import EvidenceKind, PrincipalKind, load_catalog, parse_catalog
from core.errors import SettingsError
from core.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "requirements.yaml"
FILE = Path("catalog.yaml")
GROUP = "5f3e1c2a-8b4d-4e6f-9a1b-2c3d4e5f6a7b"
DEFINITION = (
    "/providers/Microsoft.Authorization/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"
)
ASSIGNMENT = (
    "/subscriptions/8c1e4a2b-3d5f-4e7a-9b0c-1d2e3f4a5b6c/resourceGroups/rg-data-prod"
    "/providers/Microsoft.Authorization/policyAssignments/sql-ltr-backup"
)
runner = CliRunner()


def _catalog(*extra: str, rid: str = "CIS-AZ-3.1", second: str = "") -> str:
    """A one-requirement catalog; ``extra`` lines go into it, ``second`` follows it."""
    lines = [
        "requirements:",  # line 1
        f"  - id: {rid}",  # line 2
        "    title: Storage encryption",  # line 3
        "    guidance: Attach the storage account list.",  # line 4
        "    evidence: [file, link]",  # line 5
        "    owner: ada@contoso.com",  # line 6
        f"    reviewers: [{GROUP}]",  # line 7
        "    due_days: 30",  # line 8
        *[f"    {line}" for line in extra],  # from line 9
    ]
    return "\n".join(lines) + "\n" + second


def _error(text: str) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_catalog(text, FILE)
    return str(caught.value)


def test_catalog_example_file_loads_six_requirements() -> None:
    """The documented example is a valid catalog of six requirements."""
    catalog = load_catalog(EXAMPLE)
    assert len(catalog) == 6
    assert catalog.source == EXAMPLE
    assert len({r.id for r in catalog}) == 6


def test_catalog_get_by_id_returns_requirement_or_none() -> None:
    """Lookup by id finds the requirement, and None for an unknown id."""
    catalog = load_catalog(EXAMPLE)
    mfa = catalog.get("ISO27001-A.8.5-MFA-ADMINS")
    assert mfa is not None and mfa.approvals == 2
    assert mfa.owner.kind is PrincipalKind.USER
    assert mfa.evidence == [EvidenceKind.FILE, EvidenceKind.LINK]
    assert catalog.get("NOPE-1") is None


def test_catalog_lookup_by_policy_ids_is_case_blind() -> None:
    """Definition and assignment ids find their requirements whatever their case."""
    catalog = load_catalog(EXAMPLE)
    assert [r.id for r in catalog.for_definition(DEFINITION.upper())] == [
        "CIS-AZ-3.1-STORAGE-ENCRYPTION"
    ]
    assert [r.id for r in catalog.for_assignment(ASSIGNMENT.lower())] == [
        "ISO27001-A.8.13-SQL-BACKUP"
    ]
    both = catalog.matching(definition_id=DEFINITION, assignment_id=ASSIGNMENT)
    assert [r.id for r in both] == ["CIS-AZ-3.1-STORAGE-ENCRYPTION", "ISO27001-A.8.13-SQL-BACKUP"]
    assert catalog.matching(definition_id="/providers/Microsoft.Authorization/x") == []


def test_catalog_principals_told_apart_by_syntax() -> None:
    """An owner is a user (UPN) or a group (GUID); escalation may also be a channel."""
    catalog = load_catalog(EXAMPLE)
    storage = catalog.get("CIS-AZ-3.1-STORAGE-ENCRYPTION")
    assert storage is not None and storage.owner.kind is PrincipalKind.GROUP
    assert storage.escalation is not None and storage.escalation.kind is PrincipalKind.CHANNEL
    assert storage.reminders == [14, 3]


def test_catalog_reminders_sorted_latest_first() -> None:
    """Reminders come back as days before due, the earliest reminder first."""
    catalog = parse_catalog(_catalog("reminders: [1, 7, 3]"), FILE)
    assert catalog.requirements[0].reminders == [7, 3, 1]


def test_catalog_duplicate_id_names_both_lines() -> None:
    """A second requirement with the same id is refused at its line, naming the first."""
    second = _catalog(rid="CIS-AZ-3.1").removeprefix("requirements:\n")
    message = _error(_catalog(second=second))
    assert "catalog.yaml:9:9: requirement 2, id:" in message
    assert "'CIS-AZ-3.1' is already used on line 2" in message


def test_catalog_unknown_key_suggests_close_match() -> None:
    """A typo in a key is refused at the key's line, with the key it probably meant."""
    message = _error(_catalog("escalaton: ciso@contoso.com"))
    assert "catalog.yaml:9:5:" in message
    assert "unknown key 'escalaton' (did you mean 'escalation'?)" in message


def test_catalog_unknown_top_level_key_refused() -> None:
    """An unknown key beside `requirements` is refused too."""
    message = _error(_catalog() + "version: 2\n")
    assert "catalog.yaml:9:1:" in message and "unknown key 'version'" in message


def test_catalog_wrong_type_names_line_and_column() -> None:
    """A number given as text is a wrong type, named at its value."""
    message = _error(_catalog().replace("due_days: 30", 'due_days: "30"'))
    assert "catalog.yaml:8:15: requirement 1 (CIS-AZ-3.1), due_days:" in message
    assert "valid integer" in message


def test_catalog_yaml_boolean_for_text_explained() -> None:
    """An unquoted `yes` where text is expected is refused with the YAML pitfall named."""
    message = _error(_catalog().replace("title: Storage encryption", "title: yes"))
    assert "catalog.yaml:3:12: requirement 1 (CIS-AZ-3.1), title:" in message
    assert "put it in quotes" in message


def test_catalog_requirement_not_mapping_refused() -> None:
    """A requirement written as plain text is refused at its line."""
    message = _error("requirements:\n  - just text\n")
    assert "catalog.yaml:2:5: requirement 1: should be a mapping" in message


def test_catalog_missing_field_names_requirement_line() -> None:
    """A missing required field is named at the line where its requirement starts."""
    message = _error(_catalog().replace("    owner: ada@contoso.com\n", ""))
    assert "catalog.yaml:2:5: requirement 1 (CIS-AZ-3.1): missing 'owner'" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("owner: bob", "'bob' is not a UPN"),
        ("owner: 19:abc@thread.tacv2", "is not a UPN (name@domain) or an Entra group"),
        (f"reviewers: [ada@contoso.com, {GROUP}]", "is not an Entra group object id"),
        ("escalation: not-a-target", "or a Teams channel id"),
        ("evidence: [file, screenshot]", "Input should be 'file', 'link' or 'attestation'"),
        ("evidence: [file, file]", "'file' is listed twice"),
        ("approvals: 0", "greater than or equal to 1"),
        ("reminders: [30]", "30 days before the due date is not after the request"),
        ("policy_definitions: [/subscriptions/x/policyDefinitions/y]", "not an Azure Policy def"),
        (
            "policy_assignments: [/providers/Microsoft.Authorization/policyDefinitions/y]",
            "is not an Azure Policy assignment id",
        ),
    ],
)
def test_catalog_bad_value_names_its_line(line: str, expected: str) -> None:
    """Each kind of bad value is refused at the line it is on, saying what is wrong."""
    key = line.split(":")[0]
    text = re.sub(rf"(?m)^    {key}:.*\n", "", _catalog()) + f"    {line}\n"
    message = _error(text)
    last = text.count("\n")
    assert re.search(rf"catalog\.yaml:{last}:\d+: requirement 1 \(CIS-AZ-3\.1\), {key}", message)
    assert expected in message


def test_catalog_bad_id_pattern_refused() -> None:
    """An id in lower case is refused at its line, with an example of a good one."""
    message = _error(_catalog(rid="cis azure 3.1"))
    assert "catalog.yaml:2:9:" in message and "e.g. ISO27001-A.8.5" in message


def test_catalog_repeated_key_refused() -> None:
    """A key given twice in one requirement is refused (YAML would keep the last silently)."""
    message = _error(_catalog("owner: bob@contoso.com"))
    assert "catalog.yaml:9:5: duplicate key 'owner'" in message


def test_catalog_empty_file_refused() -> None:
    """An empty file is refused, saying what it needs."""
    assert "catalog.yaml:1:1: the file is empty" in _error("# nothing yet\n")


def test_catalog_no_requirements_refused() -> None:
    """An empty requirement list is refused at its line."""
    assert "catalog.yaml:1:15: requirements: the catalog has no requirements" in _error(
        "requirements: []\n"
    )


def test_catalog_yaml_syntax_error_names_line() -> None:
    """Text that is not YAML is refused at the line the parser stopped."""
    message = _error(_catalog("reminders: [7, 1"))
    assert "catalog.yaml:10:1: not valid YAML" in message


def test_catalog_unreadable_file_names_variable(tmp_path: Path) -> None:
    """A file that does not exist is named with its variable."""
    with pytest.raises(SettingsError, match=r"WARDEN_REQUIREMENTS_FILE: .*missing\.yaml"):
        load_catalog(tmp_path / "missing.yaml")


def test_catalog_bad_file_stops_load_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured catalog that is bad stops start-up, naming the file and line."""
    bad = tmp_path / "requirements.yaml"
    bad.write_text(_catalog("owner: bob"), encoding="utf-8")
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("WARDEN_REQUIREMENTS_FILE", str(bad))
    with pytest.raises(SettingsError, match=rf"{re.escape(str(bad))}:9:5: duplicate key 'owner'"):
        load_settings()


def test_catalog_bad_file_stops_create_app(tmp_path: Path) -> None:
    """Settings built without load_settings still cannot start an app on a bad catalog."""
    bad = tmp_path / "requirements.yaml"
    bad.write_text(_catalog("approvals: 0"), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"requirements\.yaml:9:16: .*approvals"):
        create_app(Settings(var_dir=tmp_path, requirements_file=bad))


def test_catalog_good_file_passes_load_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured valid catalog lets start-up go on."""
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("WARDEN_REQUIREMENTS_FILE", str(EXAMPLE))
    settings = load_settings()
    assert settings.requirements_file == EXAMPLE
    assert len(create_app(settings)[CATALOG]) == 6


def test_catalog_check_command_shows_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """`catalog check FILE` prints the requirements and says the file is valid."""
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    result = runner.invoke(cli, ["catalog", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "ISO27001-A.8.5-MFA-ADMINS" in result.output
    assert "6 requirement(s)" in result.output


def test_catalog_check_command_bad_file_exit_1(tmp_path: Path) -> None:
    """`catalog check FILE` on a bad catalog prints each error's line and exits 1."""
    bad = tmp_path / "requirements.yaml"
    bad.write_text(_catalog("ownr: ada@contoso.com"), encoding="utf-8")
    result = runner.invoke(cli, ["catalog", "check", str(bad)])
    assert result.exit_code == 1
    assert ":9:5: requirement 1 (CIS-AZ-3.1), ownr: unknown key 'ownr'" in result.output
