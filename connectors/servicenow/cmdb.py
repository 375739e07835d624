"""The ``itsm.cmdb`` job: the CMDB CIs matching an incident's entities, found and stored.

The job reads the incident's entities from Sentinel, keeps those that name a machine or a
resource (hosts, FQDNs, IP addresses, Azure resources; never accounts, URLs or files), looks
them up through the ITSM connector (``configuration_items``: by name, FQDN or IP address) and
stores what matched (``core.store.cmdb.store_found``), which redraws the incident's cards
when the set changed. Sentinel or the CMDB down: the ``DeliveryError`` goes to the outbox,
which retries. Nothing matched: an empty set is stored.

``CmdbUpsert`` writes Warden's CIs (Azure resources, from the Resource Graph sync) into
``cmdb_ci``: exactly one record per Azure resource id, which it carries in ``correlation_id``
(lower case). Each batch is looked up first (``correlation_idIN…`` on ``cmdb_ci``, which
answers every CI class); a CI found is PATCHed only when a field differs, one not found is
created in its class (``ci_class``); several records carrying one id, or an answer holding a
record that does not (an ignored query), raise ``ItsmAmbiguous`` and nothing is written. A
create is sent once; when its answer is lost the id is looked up again before it is sent
again, so a retry, a resumed sync or a second run never makes a duplicate. Retiring sets
``install_status`` 7 (Retired) and ``operational_status`` 6 (Retired); nothing is deleted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from connectors.sentinel.client import Workspace
from connectors.sentinel.mapping import Entity
from connectors.sentinel.triage import locate
from connectors.servicenow.errors import ServiceNowError, invalid_answer
from connectors.servicenow.mapping import value
from connectors.servicenow.query import CMDB_CI, SYS_USER, Query, check_value
from connectors.servicenow.table import TableApi
from core.errors import DeliveryError, ItsmAmbiguous, Outcome
from core.itsm import ConfigurationItem, ItsmConnector
from core.store import cmdb as cmdb_store
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

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


CI_CLASSES = {
    "microsoft.compute/virtualmachines": "cmdb_ci_vm_instance",
    "microsoft.sql/servers/databases": "cmdb_ci_database",
    "microsoft.web/sites": "cmdb_ci_appl",
}
"""Azure resource type → the CMDB class a new CI is created in (else ``cmdb_ci``)."""

RETIRED = {"install_status": "7", "operational_status": "6"}
"""What marks a CI retired (ServiceNow's install and operational status choices)."""

ACTIVE = {"install_status": "1", "operational_status": "1"}

BATCH = 20
"""CIs looked up in one ``IN`` query at most (resource ids are long: the URL stays ~4 KB)."""

MAX_THROTTLED = 5
"""Times one create is sent again after a 429 (rate limited: not processed)."""

MAX_THROTTLE_WAIT = 60.0
"""The longest a create waits after a 429, whatever ``Retry-After`` says."""


def ci_class(item: ConfigurationItem) -> str:
    """The CMDB class a new CI of ``item``'s Azure type is created in."""
    return CI_CLASSES.get(item.type.lower(), CMDB_CI)


def ci_fields(item: ConfigurationItem, owned_by: str = "") -> dict[str, str]:
    """The ``cmdb_ci`` fields Warden keeps for ``item`` (its id goes in ``correlation_id``);
    ``owned_by`` is the sys_id of its owner's user ("" when none or not found)."""
    return {
        "name": item.name[:255],
        "short_description": f"Azure {item.type}"[:160],
        "environment": item.env or "",
        "owned_by": owned_by,
        **ACTIVE,
    }


def owner_key(item: ConfigurationItem) -> str:
    """How ``item``'s owner tag is matched: trimmed, lower case ("" without one)."""
    return (item.owner or "").strip().lower()


class CmdbUpsert:
    """Exact upserts of Azure CIs into ``cmdb_ci`` (see the module docstring)."""

    def __init__(
        self,
        api: TableApi,
        *,
        concurrency: int = 8,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Write through ``api``, at most ``concurrency`` calls at a time; ``sleep`` waits
        out a 429 on a create (ServiceNow did not process it, so it is sent again)."""
        self._api = api
        self._slots = asyncio.Semaphore(concurrency)
        self._sleep = sleep
        self._owners: dict[str, str] = {}  # owner key → sys_id ("": no one user), this run
        self._unresolved: set[str] = set()

    def owners_unresolved(self) -> int:
        """Distinct owners so far that matched no user, or several (``owned_by`` empty)."""
        return len(self._unresolved)

    async def upsert(self, items: Sequence[ConfigurationItem]) -> int:
        """Create or update the record of each CI; how many were written.

        The batches' lookups and writes overlap, at most ``concurrency`` calls at a time;
        the first failure cancels the calls still waiting and is raised as it is.
        """
        await self._resolve_owners(items)
        batches = [items[start : start + BATCH] for start in range(0, len(items), BATCH)]
        return sum(await _all(self._upsert_batch(batch) for batch in batches))

    async def retire(self, ci_ids: Sequence[str]) -> int:
        """Mark the records of ``ci_ids`` retired (those with none are left); how many."""
        batches = [ci_ids[start : start + BATCH] for start in range(0, len(ci_ids), BATCH)]
        return sum(await _all(self._retire_batch(batch) for batch in batches))

    async def _upsert_batch(self, batch: Sequence[ConfigurationItem]) -> int:
        """Look one batch up, then write each of its CIs; how many were written."""
        found = await self._existing([item.ci_id for item in batch])
        return sum(await _all(self._one(item, found.get(item.ci_id)) for item in batch))

    async def _retire_batch(self, ci_ids: Sequence[str]) -> int:
        """Retire the records of one batch that are not retired yet; how many."""
        found = await self._existing(ci_ids)
        stale = [r for r in found.values() if any(value(r, k) != v for k, v in RETIRED.items())]
        await _all(self._patch(record, dict(RETIRED)) for record in stale)
        return len(stale)

    async def _one(self, item: ConfigurationItem, record: dict[str, Any] | None) -> bool:
        """Write one CI: PATCH what differs, or create it; True when something was sent."""
        fields = ci_fields(item, self._owners.get(owner_key(item), ""))
        if record is None:
            await self._create(item, fields)
            return True
        changed = {k: v for k, v in fields.items() if value(record, k) != v}
        if changed:
            await self._patch(record, changed)
        return bool(changed)

    async def _resolve_owners(self, items: Sequence[ConfigurationItem]) -> None:
        """Find the user of each owner not looked up yet this run (cached for the run)."""
        wanted = sorted({owner_key(item) for item in items} - {""} - self._owners.keys())
        batches = [wanted[start : start + BATCH] for start in range(0, len(wanted), BATCH)]
        await _all(self._owner_batch(batch) for batch in batches)

    async def _owner_batch(self, owners: Sequence[str]) -> None:
        """Match ``owners`` exactly (any case) on ``email`` or ``user_name``; one user each,
        else none: an unknown or ambiguous owner is left empty, never guessed."""
        listed = [owner for owner in owners if _listable(owner)]
        records: list[dict[str, Any]] = []
        if listed:
            query = Query(SYS_USER).where_in(("email", "user_name"), listed)
            async with self._slots:
                records, _ = await self._api.page(SYS_USER, query, limit=2 * len(listed) + 1)
        for owner in owners:
            users = {
                value(record, "sys_id")
                for record in records
                if owner in (value(record, "email").lower(), value(record, "user_name").lower())
            }
            self._owners[owner] = users.pop() if len(users) == 1 else ""
            if not self._owners[owner]:
                self._unresolved.add(owner)

    async def _existing(self, ci_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The one record of each id that has one; ``ItsmAmbiguous`` for doubles or strays."""
        wanted = {ci_id.lower() for ci_id in ci_ids}
        listed = [i for i in wanted if _listable(i)]
        records: list[dict[str, Any]] = []
        if listed:
            query = Query(CMDB_CI).where_in(("correlation_id",), sorted(listed))
            records += await self._page(query, len(listed) + 1)
        for ci_id in wanted.difference(listed):
            records += await self._page(Query(CMDB_CI).where("correlation_id", "=", ci_id), 2)
        found: dict[str, dict[str, Any]] = {}
        for record in records:
            key = value(record, "correlation_id").lower()
            if key not in wanted:
                raise ItsmAmbiguous("cmdb_ci: the answer holds a CI the query did not ask for")
            if key in found:
                raise ItsmAmbiguous(f"cmdb_ci: several CIs carry {key}", matches=2)
            found[key] = record
        return found

    async def _page(self, query: Query, limit: int) -> list[dict[str, Any]]:
        """One ``cmdb_ci`` lookup, in a slot."""
        async with self._slots:
            page, _ = await self._api.page(CMDB_CI, query, limit=limit)
        return page

    async def _write(
        self, method: str, path: str, body: dict[str, str], *, repeatable: bool = False
    ) -> dict[str, Any]:
        """One write, in a slot."""
        async with self._slots:
            return await self._api.write(method, path, body, repeatable=repeatable)

    async def _create(self, item: ConfigurationItem, fields: dict[str, str]) -> None:
        """POST the CI in its class, once; a lost answer is looked up before a resend, a
        429 (not processed) is waited out and sent again."""
        table = ci_class(item)
        body = {**fields, "correlation_id": item.ci_id}
        throttled = 0
        for attempt in range(1, 4):
            try:
                record = await self._write("POST", f"/api/now/table/{table}", body)
            except ServiceNowError as exc:
                if exc.status == 429 and throttled < MAX_THROTTLED:
                    throttled += 1
                    await self._sleep(min(exc.retry_after or 1.0, MAX_THROTTLE_WAIT))
                    continue
                lost = exc.attempted and (exc.status is None or exc.status >= 500)
                if not lost or attempt == 3:
                    raise
                if await self._existing([item.ci_id]):
                    return
                continue
            if value(record, "correlation_id").lower() != item.ci_id:
                raise invalid_answer(f"POST {table}: the created CI lacks its correlation id")
            return

    async def _patch(self, record: dict[str, Any], body: dict[str, str]) -> None:
        """PATCH ``body`` onto the CI (repeatable: it adds no journal entry)."""
        sys_id = value(record, "sys_id")
        path = f"/api/now/table/{CMDB_CI}/{sys_id}"
        answer = await self._write("PATCH", path, body, repeatable=True)
        if value(answer, "sys_id") != sys_id:
            raise invalid_answer(f"PATCH {CMDB_CI}: the answer is another record")


async def _all(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` together; the first failure cancels the rest and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [task.result() for task in tasks]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of ``group`` (a cancel only when nothing else failed)."""
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.append(_first(exc) if isinstance(exc, BaseExceptionGroup) else exc)
    real = [exc for exc in leaves if not isinstance(exc, asyncio.CancelledError)]
    return (real or leaves)[0]


def _listable(ci_id: str) -> bool:
    """True when ``ci_id`` may go in an ``IN`` list (no comma, nothing unsafe)."""
    try:
        check_value(ci_id, listed=True)
    except ValueError:
        return False
    return True
