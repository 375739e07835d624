"""Warden's ITSM data contracts: IncidentLink and the CMDB CI, and their published schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pydantic
import pytest

from core.errors import ItsmRecordNotFound
from core.itsm import (
    SCHEMA_DIR,
    SCHEMAS,
    ConfigurationItem,
    IncidentLink,
    ItsmSystem,
    RecordType,
    schema_document,
)
from core.settings import load_settings

LINK = {
    "system": "servicenow",
    "externalId": "CHG0030001",
    "key": "5a4f2c1e1b7d2010a1b2c3d4e5f60718",
    "url": "https://dev00000.service-now.com/change_request.do?sys_id=5a4f",
    "type": "change_request",
    "status": "Implement",
    "priority": 2,
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_itsm_schema_files_current(name: str) -> None:
    """docs/schemas/<name> is what its model generates."""
    current = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert current == schema_document(SCHEMAS[name]), (
        'regenerate: .venv/bin/python -c "from core.itsm import write_schemas; write_schemas()"'
    )


def test_incident_link_json_valid_against_schema() -> None:
    """A link serialises with camelCase names and validates against its published schema."""
    link = IncidentLink.model_validate(LINK)
    dumped = link.model_dump(mode="json", by_alias=True)
    assert dumped == LINK
    schema = json.loads((SCHEMA_DIR / "incident-link.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(dumped, schema)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"externalId": "INC0010001"}, "not a change_request number"),
        ({"externalId": "CHG12"}, "not a record number"),
        ({"url": "javascript:alert(1)"}, "pattern"),
        ({"url": "ftp://x/y"}, "pattern"),
        ({"type": "story"}, "type"),
        ({"priority": 6}, "priority"),
        ({"extra": "no"}, "extra"),
    ],
)
def test_incident_link_invalid_refused(change: dict[str, object], problem: str) -> None:
    """A link whose number, url, type or priority is wrong is refused."""
    with pytest.raises(pydantic.ValidationError, match=problem):
        IncidentLink.model_validate({**LINK, **change})


def test_incident_link_frozen() -> None:
    """A stored link cannot be changed in place."""
    link = IncidentLink.model_validate(LINK)
    with pytest.raises(pydantic.ValidationError):
        link.status = "Closed"  # type: ignore[misc]


def test_record_type_of_number_by_prefix() -> None:
    """A record number names its type by its prefix, case-insensitively."""
    assert RecordType.of_number("chg0030001") is RecordType.CHANGE_REQUEST
    assert RecordType.of_number("INC0010001") is RecordType.INCIDENT
    with pytest.raises(ValueError, match="not a record number"):
        RecordType.of_number("XYZ0010001")


def test_configuration_item_requires_utc_and_validates_schema() -> None:
    """A CI's lastSeenUtc must carry a zone; the JSON validates against cmdb-ci's schema."""
    item = ConfigurationItem.model_validate(
        {
            "ciId": "c1",
            "name": "web01",
            "type": "cmdb_ci_linux_server",
            "owner": "Ada Admin",
            "env": "Production",
            "tags": ["pci"],
            "lastSeenUtc": "2026-01-09T16:20:11+02:00",
        }
    )
    assert item.last_seen_utc == datetime(2026, 1, 9, 14, 20, 11, tzinfo=UTC)
    schema = json.loads((SCHEMA_DIR / "cmdb-ci.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(item.model_dump(mode="json", by_alias=True), schema)
    with pytest.raises(pydantic.ValidationError, match="time zone"):
        ConfigurationItem.model_validate(
            {"ciId": "c1", "name": "n", "type": "t", "lastSeenUtc": "2026-01-09T16:20:11"}
        )


def test_record_not_found_user_message_names_number() -> None:
    """The responder is told which record, and both reasons it cannot be read."""
    error = ItsmRecordNotFound("CHG0030099")
    assert error.user_message.startswith("No ServiceNow record CHG0030099 that Warden can read")
    assert ItsmSystem.SERVICENOW.value == "servicenow"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"WARDEN_SERVICENOW__INSTANCE_URL": "https://x.service-now.com"}, "no credentials"),
        (
            {
                "WARDEN_SERVICENOW__INSTANCE_URL": "https://x.service-now.com",
                "WARDEN_SERVICENOW__CLIENT_ID": "c",
            },
            "WARDEN_SERVICENOW__CLIENT_SECRET",
        ),
        (
            {
                "WARDEN_SERVICENOW__INSTANCE_URL": "https://x.service-now.com",
                "WARDEN_SERVICENOW__USERNAME": "u",
            },
            "WARDEN_SERVICENOW__PASSWORD",
        ),
        ({"WARDEN_SERVICENOW__INSTANCE_URL": "x.service-now.com"}, "origin"),
        ({"WARDEN_SERVICENOW__WEBHOOK_SECRETS": "nope"}, "whsec_"),
        ({"WARDEN_SERVICENOW__WEBHOOK_SECRETS": "whsec_not base64!"}, "base64"),
    ],
)
def test_servicenow_settings_bad_values_name_variables(
    env: dict[str, str], problem: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """Missing or half credentials stop start-up with a message naming the variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Exception, match=problem):
        load_settings(var_dir=tmp_path)


def test_servicenow_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """The nested variables configure the connector; secrets stay SecretStr."""
    monkeypatch.setenv("WARDEN_SERVICENOW__INSTANCE_URL", "https://x.service-now.com/")
    monkeypatch.setenv("WARDEN_SERVICENOW__CLIENT_ID", "warden")
    monkeypatch.setenv("WARDEN_SERVICENOW__CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("WARDEN_SERVICENOW__SEVERITY_PRIORITY", '{"High": [1, 2]}')
    monkeypatch.setenv("WARDEN_SERVICENOW__POLL_SECONDS", "30")
    monkeypatch.setenv("WARDEN_SERVICENOW__WEBHOOK_SECRETS", "whsec_c2VjcmV0MQ==, whsec_YWJj")
    servicenow = load_settings(var_dir=tmp_path).servicenow
    assert servicenow.enabled and servicenow.uses_oauth
    assert servicenow.instance_url == "https://x.service-now.com"
    assert servicenow.severity_priority == {"High": (1, 2)}
    assert servicenow.poll_seconds == 30
    assert "s3cret" not in repr(servicenow)
    assert [s.get_secret_value() for s in servicenow.webhook_secrets] == [
        "whsec_c2VjcmV0MQ==",
        "whsec_YWJj",
    ]
