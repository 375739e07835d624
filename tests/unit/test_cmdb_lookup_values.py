"""Specification of which incident entities are looked up in the CMDB, and by what value."""

from __future__ import annotations

import pytest

from connectors.sentinel.mapping import Entity
from connectors.servicenow.cmdb import lookup_values


def entity(kind: str, friendly_name: str | None) -> Entity:
    """An entity as ``list_entities`` returns it."""
    return Entity(name="e1", kind=kind, friendly_name=friendly_name)


@pytest.mark.parametrize(
    ("kind", "friendly_name", "values"),
    [
        ("Host", "WEB-PRD-01", ["WEB-PRD-01"]),
        ("Host", "web-prd-01.contoso.com", ["web-prd-01.contoso.com", "web-prd-01"]),
        ("Ip", "10.20.1.11", ["10.20.1.11"]),
        ("Ip", "2001:DB8::0001", ["2001:db8::1"]),
        ("Ip", "not-an-address", []),
        ("AzureResource", "/subscriptions/s/resourceGroups/rg/providers/x/vm-07", ["vm-07"]),
        ("AzureResource", "vm-07", ["vm-07"]),
        ("DnsResolution", "build-agent-07.contoso.com", ["build-agent-07.contoso.com"]),
        ("Account", "ada", []),
        ("Url", "https://web-prd-01.contoso.com/login", []),
        ("File", "payload.exe", []),
        ("Host", None, []),
        ("Host", "  ", []),
    ],
)
def test_lookup_values_entity_kind_gives_its_values(
    kind: str, friendly_name: str | None, values: list[str]
) -> None:
    """Hosts, IPs, Azure resources and DNS names are looked up; accounts, URLs, files not."""
    assert lookup_values([entity(kind, friendly_name)]) == values


def test_lookup_values_same_value_twice_is_looked_up_once() -> None:
    """A host and an IP naming the same machine twice give each value once, first spelling."""
    found = lookup_values(
        [entity("Host", "WEB-PRD-01"), entity("Ip", "10.20.1.11"), entity("Host", "web-prd-01")]
    )
    assert found == ["WEB-PRD-01", "10.20.1.11"]


def test_lookup_values_ip_host_name_is_not_split() -> None:
    """A host named by its IP address is looked up whole, not by its first octet."""
    assert lookup_values([entity("Host", "10.20.1.11")]) == ["10.20.1.11"]
