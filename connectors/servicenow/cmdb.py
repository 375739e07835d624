"""The ``itsm.cmdb`` job: the CMDB CIs matching an incident's entities, found and stored.

The job reads the incident's entities from Sentinel, keeps those that name a machine or a
resource (hosts, FQDNs, IP addresses, Azure resources; never accounts, URLs or files), looks
them up through the ITSM connector (``configuration_items``: by name, FQDN or IP address) and
stores what matched (``core.store.cmdb.store_found``), which redraws the incident's cards
when the set changed. Sentinel or the CMDB down: the ``DeliveryError`` goes to the outbox,
which retries. Nothing matched: an empty set is stored.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Protocol

from connectors.sentinel.client import Workspace
from connectors.sentinel.mapping import Entity
from connectors.sentinel.triage import locate
from core.errors import DeliveryError, Outcome
from core.itsm import ItsmConnector
from core.store import cmdb as cmdb_store
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

LOOKUP_KINDS = frozenset({"host", "ip", "azureresource", "dnsresolution"})
"""Entity kinds (lower-case) that can name a configuration item."""


class EntitySource(Protocol):
    """Where an incident's entities are read (``SentinelClient``)."""

    async def list_entities(self, workspace: Workspace, incident_name: str) -> list[Entity]:
        """The incident's entities; ``DeliveryError`` when the source does not answer."""


def lookup_values(entities: Iterable[Entity]) -> list[str]:
    """The names and addresses to look up for ``entities``, each once, in entity order.

    A host gives its name (and, when it is an FQDN, its first label too, the name a CMDB
    usually files a server under); an IP its canonical address (an unparsable one nothing);
    an Azure resource its name (the last segment of a resource id); a DNS resolution its
    domain. Other kinds give nothing.
    """
    values: dict[str, str] = {}
    for entity in entities:
        if entity.kind.lower() not in LOOKUP_KINDS:
            continue
        for found in _values_of(entity.kind.lower(), (entity.friendly_name or "").strip()):
            values.setdefault(found.lower(), found)
    return list(values.values())


def _values_of(kind: str, name: str) -> list[str]:
    """What one entity of ``kind`` named ``name`` is looked up by."""
    if not name:
        return []
    if kind == "ip":
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            return []
    if kind == "azureresource":
        return [name.rstrip("/").rsplit("/", 1)[-1]] if name.rstrip("/") else []
    if kind == "host" and "." in name and not _is_address(name):
        return [name, name.split(".", 1)[0]]
    return [name]


def _is_address(text: str) -> bool:
    """True when ``text`` is an IP address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class CmdbLookup:
    """The outbox handler of ``itsm.cmdb`` jobs (see the module docstring)."""

    def __init__(self, entities: EntitySource, itsm: ItsmConnector, store: Store) -> None:
        self._entities = entities
        self._itsm = itsm
        self._store = store

    async def __call__(self, job: Job) -> None:
        """Look the job's incident's entities up; store the CIs found (maybe none)."""
        incident_key = job.payload.get("incident_key")
        if not isinstance(incident_key, str) or not incident_key:
            raise DeliveryError("the job names no incident", outcome=Outcome.FAIL)
        try:
            workspace, name = locate(incident_key)
        except ValueError:
            log.info("CMDB lookup: incident %s is not a Sentinel incident", job.id)
            await cmdb_store.store_found(self._store, incident_key, [])
            return
        values = lookup_values(await self._entities.list_entities(workspace, name))
        found = await self._itsm.configuration_items(values) if values else []
        changed = await cmdb_store.store_found(self._store, incident_key, found)
        log.info(
            "CMDB lookup (job %s): %d value(s), %d CI(s), %s",
            job.id,
            len(values),
            len(found),
            "changed" if changed else "unchanged",
        )
