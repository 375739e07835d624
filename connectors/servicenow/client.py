"""Async client of ServiceNow's Table API: Warden's first ``ItsmConnector``.

Calls go through ``table.TableApi`` over the injected ``httpx.AsyncClient``
(``connectors.http.resilient_client``), with basic auth or OAuth2 client credentials
(``auth``; a 401 under OAuth renews the token once); records are mapped by ``mapping``,
failures are the typed errors of ``errors``.

Nothing a query returns is trusted: ServiceNow ignores an invalid query (or an unknown
field) and answers with every record, so each record must satisfy the query Warden sent.
A lookup that must match one record and does not raises ``ItsmAmbiguous`` before anything
is written. ServiceNow does not honour ``Idempotency-Key``, so a create (POST) is sent
once by the transport; when it got no answer, the client looks the correlation id up
again before sending it again, so a lost answer never makes a second record. A PATCH is
retried by the transport unless it carries a work note (a journal entry would repeat).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from connectors.auth import Authenticator
from connectors.http import DEFAULT_TIMEOUT
from connectors.servicenow.auth import authenticator
from connectors.servicenow.errors import (
    ServiceNowError,
    ServiceNowNotFound,
    invalid_answer,
)
from connectors.servicenow.fields import priority_of
from connectors.servicenow.mapping import ci_from_json, ci_matches, record_from_json, value
from connectors.servicenow.query import (
    CMDB_CI,
    Query,
    check_value,
    glide_time,
    writable,
)
from connectors.servicenow.table import TableApi
from core.errors import InvalidPayload, ItsmAmbiguous, ItsmRecordNotFound
from core.itsm import (
    ChangeDraft,
    ConfigurationItem,
    ItsmChange,
    ItsmRecord,
    ItsmSystem,
    RecordType,
    normalize_number,
)
from core.settings.servicenow import ServiceNowSettings

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
"""Sends of one create at most (each after looking the correlation id up again)."""

MAX_CI_VALUES = 50
"""Names and addresses looked up in one CMDB query at most."""


class ServiceNowClient:
    """Reads and writes ServiceNow records through the Table API (see the module docstring).

    The caller owns (and closes) ``http``. ``overlap`` is how far before a watermark
    ``changed_since`` reads again; ``page_size`` is its ``sysparm_limit``.
    """

    system = ItsmSystem.SERVICENOW

    def __init__(
        self,
        http: httpx.AsyncClient,
        instance_url: str,
        auth: Authenticator,
        *,
        overlap: timedelta = timedelta(minutes=2),
        page_size: int = 100,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the instance at ``instance_url`` (its origin, http or https)."""
        self._api = TableApi(http, instance_url, auth, page_size=page_size, timeout=timeout)
        self._overlap = overlap

    @classmethod
    def from_settings(
        cls, http: httpx.AsyncClient, settings: ServiceNowSettings
    ) -> ServiceNowClient:
        """The client ``settings`` describe (``ValueError`` when ServiceNow is off)."""
        auth = authenticator(http, settings)
        overlap = timedelta(seconds=settings.poll_overlap_seconds)
        return cls(http, str(settings.instance_url), auth, overlap=overlap)

    async def get(self, number: str) -> ItsmRecord | None:
        """The record with this number, None when none can be read; ``ValueError`` if bad."""
        wanted = normalize_number(number)
        table = RecordType.of_number(wanted)
        query = Query(table.value).where("number", "=", wanted)
        found = await self._exact(table, query, "number", wanted)
        return found

    async def get_by_key(self, table: RecordType, key: str) -> ItsmRecord | None:
        """The record of ``table`` whose sys_id is ``key``; None when none can be read."""
        query = Query(table.value).where("sys_id", "=", key)
        return await self._exact(table, query, "sys_id", key)

    async def find_by_correlation(
        self, table: RecordType, correlation_id: str
    ) -> ItsmRecord | None:
        """The one record of ``table`` carrying ``correlation_id``; None when none does.

        Exact, like ``upsert_by_correlation``: several records, or an answer holding a record
        without that id (an ignored query), raise ``ItsmAmbiguous``. Nothing is created.
        """
        query = Query(table.value).where("correlation_id", "=", correlation_id)
        return await self._exact(table, query, "correlation_id", correlation_id)

    async def search(
        self, text: str, *, types: Sequence[RecordType], limit: int = 10
    ) -> list[ItsmRecord]:
        """Records whose number starts with ``text``, or whose short description holds it.

        Newest first, at most ``limit``. Text that cannot be queried safely finds nothing;
        a returned record that does not match is dropped (and logged).
        """
        needle = text.strip()
        try:
            check_value(needle)
        except ValueError:
            return []
        results: list[ItsmRecord] = []
        for table in types:
            rest = needle[len(table.prefix) :]
            if needle.upper().startswith(table.prefix) and (not rest or rest.isdigit()):
                name, operator = "number", "STARTSWITH"
            elif any(needle.upper().startswith(t.prefix) for t in RecordType):
                continue
            else:
                name, operator = "short_description", "LIKE"
            query = Query(table.value).where(name, operator, needle)
            query.order_by("sys_updated_on", descending=True)
            records, _ = await self._api.page(table.value, query, limit=limit)
            for record in records:
                field = value(record, name).lower()
                ok = (
                    field.startswith(needle.lower())
                    if name == "number"
                    else needle.lower() in field
                )
                if not ok:
                    log.warning("search on %s: dropped a record not matching the query", table)
                    continue
                results.append(self._mapped(record, table))
        results.sort(key=lambda r: r.updated_at.timestamp() if r.updated_at else 0, reverse=True)
        return results[:limit]

    async def create_change(self, draft: ChangeDraft) -> ItsmRecord:
        """The change request of ``draft.correlation_id``: the one existing, or a new one."""
        fields: dict[str, str] = {
            "short_description": draft.short_description,
            "description": draft.description,
            "correlation_display": draft.correlation_display,
            **draft.fields,
        }
        if draft.impact is not None and draft.urgency is not None:
            priority = priority_of(draft.impact, draft.urgency)
            fields.update(impact=str(draft.impact), urgency=str(draft.urgency))
            fields["priority"] = str(priority)
        table = RecordType.CHANGE_REQUEST
        return await self._ensure(table, draft.correlation_id, fields, update=False)

    async def upsert_by_correlation(
        self, table: RecordType, correlation_id: str, fields: Mapping[str, str]
    ) -> ItsmRecord:
        """Create the one record with ``correlation_id``, or PATCH it with ``fields``.

        ``ItsmAmbiguous`` (nothing written) when several records carry the id, or the
        answer holds a record that does not.
        """
        return await self._ensure(table, correlation_id, dict(fields), update=True)

    async def add_work_note(self, record: ItsmRecord, text: str) -> ItsmRecord:
        """Append the internal work note ``text`` to ``record``."""
        return await self.update(record, ItsmChange(work_note=text))

    async def update(self, record: ItsmRecord, change: ItsmChange) -> ItsmRecord:
        """PATCH the fields ``change`` sets; the record as stored afterwards."""
        body = dict(writable(record.type.value, change.fields))
        named = {
            "work_notes": change.work_note,
            "state": change.state,
            "impact": change.impact,
            "urgency": change.urgency,
            "close_code": change.close_code,
            "close_notes": change.close_notes,
            "priority": change.priority,
        }
        body.update({k: str(v) for k, v in named.items() if v is not None})
        if not body:
            return record
        try:
            return await self._patch(record.type, record.key, body)
        except ServiceNowNotFound as exc:
            raise ItsmRecordNotFound(record.number, detail=str(exc)) from exc

    async def changed_since(
        self, watermark: datetime, *, types: Sequence[RecordType]
    ) -> AsyncIterator[ItsmRecord]:
        """Records updated at or after ``watermark`` less the overlap, oldest first per table.

        Pages follow the ``Link`` header (or the offset when there is none). A record
        updated before the bound means the query was ignored: ``ItsmAmbiguous``.
        """
        bound = glide_time(watermark - self._overlap)
        for table in types:
            query = Query(table.value).where("sys_updated_on", ">=", bound)
            query.order_by("sys_updated_on")
            url: str | None = None
            offset, seen = 0, set[str]()
            while True:
                records, link = await self._api.page(table.value, query, offset=offset, url=url)
                for record in records:
                    if value(record, "sys_updated_on") < bound:
                        raise ItsmAmbiguous(
                            f"{table}: the answer holds a record updated before {bound}"
                        )
                    yield self._mapped(record, table)
                if link is not None:
                    url = self._api.follow(link, seen)
                elif len(records) >= self._api.page_size and url is None:
                    offset += self._api.page_size
                else:
                    break

    async def configuration_items(
        self, names_or_addresses: Sequence[str]
    ) -> list[ConfigurationItem]:
        """The CIs whose name, FQDN or IP address is one of ``names_or_addresses``."""
        wanted: dict[str, str] = {}
        for item in names_or_addresses:
            try:
                wanted.setdefault(check_value(item.strip(), listed=True).lower(), item.strip())
            except ValueError:
                log.info("CMDB lookup: skipped a value that cannot be queried safely")
        if not wanted:
            return []
        values = list(wanted.values())[:MAX_CI_VALUES]
        query = Query(CMDB_CI).where_in(("name", "fqdn", "ip_address"), values)
        records, _ = await self._api.page(CMDB_CI, query, limit=len(values) * 4)
        keys = {v.lower() for v in values}
        items: list[ConfigurationItem] = []
        for record in records:
            if not ci_matches(record, keys):
                log.warning("CMDB lookup: dropped a CI not matching the query")
                continue
            try:
                items.append(ci_from_json(record))
            except InvalidPayload as exc:
                log.warning("CMDB lookup: skipped an unreadable CI (field %s)", exc.field)
        return items

    async def aclose(self) -> None:
        """Nothing to release: the caller owns the HTTP client."""

    # -- exact lookups and writes --------------------------------------------------------

    async def _exact(
        self, table: RecordType, query: Query, field: str, expected: str
    ) -> ItsmRecord | None:
        """The one record whose ``field`` is ``expected``; None for none; else ambiguous."""
        records, _ = await self._api.page(table.value, query, limit=2)
        strangers = [r for r in records if value(r, field).upper() != expected.upper()]
        if strangers:
            raise ItsmAmbiguous(
                f"{table}: {field}={expected} was answered with {len(strangers)} record(s) "
                "that do not match (an ignored query?)",
                matches=len(records),
            )
        if len(records) > 1:
            raise ItsmAmbiguous(f"{table}: {field}={expected} matches several records", matches=2)
        return self._mapped(records[0], table) if records else None

    async def _ensure(
        self, table: RecordType, correlation_id: str, fields: dict[str, str], *, update: bool
    ) -> ItsmRecord:
        """Find the record of ``correlation_id``; PATCH it (``update``) or create it."""
        body = writable(table.value, {k: v for k, v in fields.items() if k != "correlation_id"})
        query = Query(table.value).where("correlation_id", "=", correlation_id)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            found = await self._exact(table, query, "correlation_id", correlation_id)
            if found is not None:
                return await self._patch(table, found.key, body) if update and body else found
            try:
                return await self._create(table, {**body, "correlation_id": correlation_id})
            except ServiceNowError as exc:
                lost = exc.status is None or exc.status >= 500
                if not lost or not exc.attempted or attempt == CREATE_ATTEMPTS:
                    raise
                log.info(
                    "create on %s got no answer (attempt %d); looking up again", table, attempt
                )
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _create(self, table: RecordType, body: dict[str, str]) -> ItsmRecord:
        """POST one record, sent once; the stored record, checked to carry its correlation id."""
        record = await self._api.write("POST", f"/api/now/table/{table.value}", body)
        if value(record, "correlation_id") != body["correlation_id"]:
            raise invalid_answer(f"POST {table}: the created record lacks its correlation id")
        return self._mapped(record, table)

    async def _patch(self, table: RecordType, sys_id: str, body: dict[str, str]) -> ItsmRecord:
        """PATCH ``body`` onto ``sys_id``; retried by the transport unless it adds a note."""
        repeatable = "work_notes" not in body and "comments" not in body
        path = f"/api/now/table/{table.value}/{sys_id}"
        record = await self._api.write("PATCH", path, body, repeatable=repeatable)
        if value(record, "sys_id") != sys_id:
            raise invalid_answer(f"PATCH {table}: the answer is another record")
        return self._mapped(record, table)

    def _mapped(self, record: Any, table: RecordType) -> ItsmRecord:
        """``record`` as an ``ItsmRecord``; one Warden cannot read is an invalid answer."""
        try:
            return record_from_json(record, table, self._api.instance)
        except InvalidPayload as exc:
            raise invalid_answer(f"{table}: unreadable record ({exc})") from exc
