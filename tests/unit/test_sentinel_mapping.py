"""Mapping Sentinel's incident resource (and the playbook envelope) to Warden's Incident."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.sentinel.mapping import incident_from_webhook, incident_from_webhook_json
from core.errors import InvalidPayload
from core.models import IncidentStatus, Severity
from core.store.store import version_key
from sandbox.sentinel_samples import sample_incident, updated_incident

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts/examples/azure-sentinel-2025-12-01"


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    body: dict[str, Any] = data["responses"]["200"]["body"]
    return body


def test_mapping_official_example_all_fields_mapped() -> None:
    """The official GetIncidentById example maps field by field."""
    incident = incident_from_webhook(_example("GetIncidentById.json"))
    assert incident.name == "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
    assert incident.number == 3177
    assert incident.severity is Severity.HIGH
    assert incident.status is IncidentStatus.CLOSED
    assert incident.owner.display == "john doe"
    assert incident.tactics == ("InitialAccess", "Persistence")
    assert incident.workspace == "myWorkspace"
    assert incident.etag == '"0300bf09-0000-0000-0000-5c37296e0000"'


def test_mapping_every_listed_example_parses() -> None:
    """Every incident in the official GetIncidents example parses."""
    data = json.loads((EXAMPLES / "GetIncidents.json").read_text())
    for resource in data["responses"]["200"]["body"]["value"]:
        assert incident_from_webhook(resource).title


def test_mapping_playbook_envelope_unwrapped() -> None:
    """The automation trigger's {"object": incident, ...} envelope yields the same incident."""
    resource = _example("GetIncidentById.json")
    envelope = {"object": resource, "workspaceInfo": {"WorkspaceName": "myWorkspace"}}
    assert incident_from_webhook(envelope) == incident_from_webhook(resource)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["properties"].pop("title"), "properties.title"),
        (lambda r: r["properties"].update(severity="Critical"), "properties.severity"),
        (
            lambda r: r["properties"].update(lastModifiedTimeUtc="yesterday"),
            "properties.lastModifiedTimeUtc",
        ),
        (lambda r: r.pop("id"), "id"),
        (lambda r: r.update(type="Microsoft.SecurityInsights/alertRules"), "type"),
    ],
)
def test_mapping_bad_field_error_names_field(mutate: Any, field: str) -> None:
    """A missing or wrong field is refused with its path, from a parsed or a raw body."""
    resource = _example("GetIncidentById.json")
    mutate(resource)
    with pytest.raises(InvalidPayload) as caught:
        incident_from_webhook(resource)
    assert caught.value.field == field
    with pytest.raises(InvalidPayload) as raw:
        incident_from_webhook_json(json.dumps(resource).encode())
    assert raw.value.field == field and str(raw.value) == str(caught.value)


def test_mapping_raw_body_same_incident_as_parsed() -> None:
    """A webhook's raw body maps to the incident its parsed JSON does, resource or envelope."""
    data = json.loads((EXAMPLES / "GetIncidents.json").read_text())
    for resource in [*data["responses"]["200"]["body"]["value"], sample_incident()]:
        raw = json.dumps(resource).encode()
        assert incident_from_webhook_json(raw) == incident_from_webhook(resource)
        envelope = json.dumps({"object": resource, "workspaceInfo": {}}).encode()
        assert incident_from_webhook_json(envelope) == incident_from_webhook(resource)


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"id": "\xff"}'])
def test_mapping_raw_body_not_json_refused_as_json(raw: bytes) -> None:
    """A body that is not JSON is told apart from one that is not an incident."""
    with pytest.raises(json.JSONDecodeError):
        incident_from_webhook_json(raw)


def test_mapping_envelope_bad_field_prefixed_with_object() -> None:
    """Inside an envelope, the field path starts at the body."""
    resource = _example("GetIncidentById.json")
    resource["properties"]["status"] = "Resolved"
    with pytest.raises(InvalidPayload) as caught:
        incident_from_webhook({"object": resource})
    assert caught.value.field == "object.properties.status"


@pytest.mark.parametrize("body", [[], "incident", 42, None, {}])
def test_mapping_not_an_object_refused(body: Any) -> None:
    """Bodies that are not incident objects are refused, not crashed on."""
    with pytest.raises(InvalidPayload):
        incident_from_webhook(body)
    with pytest.raises(InvalidPayload):
        incident_from_webhook_json(json.dumps(body).encode())


def test_version_later_modification_is_newer() -> None:
    """A later lastModifiedTimeUtc is a newer version, whatever the etag."""
    first = incident_from_webhook(sample_incident())
    second = incident_from_webhook(updated_incident(sample_incident()))
    later = first.model_copy(
        update={"last_modified": first.last_modified + timedelta(seconds=1), "etag": '"0"'}
    )
    assert later.is_newer_than(first) and not first.is_newer_than(later)
    assert version_key(later) > version_key(first)
    assert second.is_newer_than(None)


def test_version_same_time_ordered_by_etag() -> None:
    """At the same modification time, the etag breaks the tie consistently."""
    first = incident_from_webhook(sample_incident()).model_copy(update={"etag": '"a"'})
    second = first.model_copy(update={"etag": '"b"'})
    assert second.is_newer_than(first) and not first.is_newer_than(second)
    assert version_key(second) > version_key(first)


def test_version_identical_not_newer() -> None:
    """The identical version is not newer than itself."""
    incident = incident_from_webhook(sample_incident())
    assert not incident.is_newer_than(incident)
