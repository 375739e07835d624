"""The set-based SQL of one ingest batch: a handful of statements per batch, not five per item.

Each method covers every item of a group-commit batch at once. On PostgreSQL the key lists go
as arrays (``= ANY``, ``unnest``), so each statement has one text whatever the batch size and
costs one round trip (straight on asyncpg, through ``RawPg``); the batch's incidents go in one
``unnest`` upsert, its card jobs through ``executemany``, which asyncpg pipelines.
On SQLite (no round trips: the whole batch runs on the writer thread) the same work is done
with ``IN`` lists and raw ``sqlite3`` calls (``core.store.sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from core.store.sql import RawPg, Statement, in_list

UPSERT_INCIDENT = Statement(
    'INSERT INTO incidents ("key", version, severity, payload, updated_at, number, xdr_id) '
    "VALUES (:key, :version, :severity, :payload, :updated_at, :number, :xdr_id) "
    'ON CONFLICT ("key") DO UPDATE SET version = excluded.version, '
    "severity = excluded.severity, payload = excluded.payload, updated_at = excluded.updated_at, "
    "number = excluded.number, xdr_id = COALESCE(excluded.xdr_id, incidents.xdr_id) "
    "WHERE incidents.version < excluded.version"
)
"""An incident's newest version; never replaces a newer one (another replica's, say)."""
_PG_UPSERT_INCIDENTS = Statement(
    'INSERT INTO incidents ("key", version, severity, payload, updated_at, number, xdr_id) '
    "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:versions AS text[]), "
    "CAST(:severities AS text[]), CAST(:payloads AS text[]), CAST(:ats AS float8[]), "
    "CAST(:numbers AS integer[]), CAST(:xdr_ids AS text[])) "
    'ON CONFLICT ("key") DO UPDATE SET version = excluded.version, '
    "severity = excluded.severity, payload = excluded.payload, updated_at = excluded.updated_at, "
    "number = excluded.number, xdr_id = COALESCE(excluded.xdr_id, incidents.xdr_id) "
    "WHERE incidents.version < excluded.version"
)
"""PostgreSQL stores a batch's incident rows (one per key) in one statement."""
INSERT_JOB = Statement(
    "INSERT INTO outbox (kind, ordering_key, conversation_id, payload, status, attempts, "
    "next_attempt_at, lease_until, last_error, created_at, updated_at) VALUES (:kind, "
    ":ordering_key, :conversation_id, :payload, :status, :attempts, :next_attempt_at, "
    ":lease_until, :last_error, :created_at, :updated_at)"
)
_RECEIPTS = (
    "INSERT INTO webhook_receipts (webhook_id, incident_key, incident_name, received_at) "
    "VALUES {values} ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id"
)
"""A batch's receipts on SQLite (3.35+ has ``RETURNING``): only the new ones come back."""
_PG_RECEIPT_NAMES = Statement(
    "SELECT webhook_id, incident_name FROM webhook_receipts "
    "WHERE webhook_id = ANY(CAST(:ids AS text[]))"
)
_SHOWING = (
    "SELECT incident_key, conversation_id, -1, NULL FROM posted_cards "
    "WHERE conversation_id IN (SELECT id FROM conversations WHERE active) AND incident_key "
)
_SUBSCRIBED = (
    " UNION ALL SELECT NULL, conversation_id, min_rank, sources FROM subscriptions "
    "WHERE conversation_id IN (SELECT id FROM conversations WHERE active) AND min_rank <= :rank"
)
_XDR_ROWS = (
    'SELECT "key", xdr_id FROM incidents WHERE xdr_id IN {ids} OR "key" IN {keys} '
    'ORDER BY updated_at, "key"'
)
"""Stored incidents of some XDR ids (oldest first: the first keeps the card), and whether some
keys are stored at all (with or without an XDR id)."""
_PG_XDR_ROWS = Statement(
    'SELECT "key", xdr_id FROM incidents WHERE xdr_id = ANY(CAST(:ids AS text[])) '
    'OR "key" = ANY(CAST(:keys AS text[])) ORDER BY updated_at, "key"'
)
_PG_OPEN = Statement(
    "WITH new AS (INSERT INTO webhook_receipts (webhook_id, incident_key, incident_name, "
    "received_at) SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:receipt_keys AS text[]), "
    "CAST(:names AS text[]), CAST(:ats AS float8[])) ON CONFLICT (webhook_id) DO NOTHING "
    'RETURNING webhook_id), stored AS (SELECT "key", version FROM incidents '
    'WHERE "key" = ANY(CAST(:keys AS text[])) ORDER BY "key" FOR UPDATE) '
    "SELECT 'receipt', webhook_id, CAST(NULL AS text), CAST(NULL AS integer), "
    "CAST(NULL AS text) FROM new "
    "UNION ALL SELECT 'version', \"key\", version, NULL, NULL FROM stored "
    "UNION ALL SELECT 'target', incident_key, conversation_id, -1, NULL FROM posted_cards "
    "WHERE conversation_id IN (SELECT id FROM conversations WHERE active) "
    "AND incident_key = ANY(CAST(:keys AS text[])) "
    "UNION ALL SELECT 'target', NULL, conversation_id, min_rank, sources FROM subscriptions "
    "WHERE conversation_id IN (SELECT id FROM conversations WHERE active) AND min_rank <= :rank"
)
"""PostgreSQL opens a batch in one round trip: receipts, locked versions and card targets."""
_PG_LOCK = Statement("SELECT pg_advisory_xact_lock(:key)")
_PG_WAITING = Statement(
    "SELECT ordering_key FROM outbox WHERE status = 'pending' "
    "AND ordering_key = ANY(CAST(:keys AS text[]))"
)


@dataclass
class Targets:
    """Who should see a batch's incidents: conversations showing each, and subscribers."""

    showing: dict[str, set[str]] = field(default_factory=dict)
    subscribers: list[tuple[str, int, frozenset[str]]] = field(default_factory=list)

    def add(
        self, incident_key: str | None, conversation_id: str, min_rank: int, sources: str | None
    ) -> None:
        """A conversation showing ``incident_key``, or (``None``) subscribed from ``min_rank``
        to the comma-separated ``sources``."""
        if incident_key is None:
            wanted = frozenset((sources or "sentinel").split(","))
            self.subscribers.append((conversation_id, min_rank, wanted))
        else:
            self.showing.setdefault(str(incident_key), set()).add(conversation_id)

    def of(self, incident_key: str, rank: int, reported_by: frozenset[str]) -> list[str]:
        """The active conversations that show ``incident_key``, or want its ``rank`` from one
        of the sources that report it, sorted."""
        wanted = {
            conv
            for conv, min_rank, sources in self.subscribers
            if min_rank <= rank and sources & reported_by
        }
        return sorted(self.showing.get(incident_key, set()) | wanted)


@dataclass
class Opened:
    """What a batch starts from: its new webhook ids, stored versions and card targets."""

    new_ids: set[str]
    versions: dict[str, str]
    targets: Targets


class IngestSql:
    """The batch's statements on one connection (PostgreSQL or SQLite)."""

    def __init__(self, conn: Connection | RawPg) -> None:
        self._conn = conn
        self._pg = isinstance(conn, RawPg) or conn.dialect.name == "postgresql"

    def open(self, receipts: Sequence[dict[str, Any]], keys: Sequence[str], rank: int) -> Opened:
        """Record the webhook receipts; read (and lock) the versions of ``keys`` and who shows
        them or subscribes up to ``rank``. One statement on PostgreSQL."""
        if not self._pg:
            return Opened(
                self._add_receipts(receipts), self._versions(keys), self._targets(keys, rank)
            )
        params = {
            "ids": [row["webhook_id"] for row in receipts],
            "receipt_keys": [row["incident_key"] for row in receipts],
            "names": [row["incident_name"] for row in receipts],
            "ats": [row["received_at"] for row in receipts],
            "keys": list(keys),
            "rank": rank,
        }
        opened = Opened(set(), {}, Targets())
        for kind, key, value, min_rank, sources in _PG_OPEN.run(self._conn, params).rows:
            if kind == "receipt":
                opened.new_ids.add(str(key))
            elif kind == "version":
                opened.versions[str(key)] = str(value)
            else:
                opened.targets.add(key, str(value), int(min_rank), sources)
        return opened

    def xdr_rows(
        self, xdr_ids: Sequence[str], keys: Sequence[str]
    ) -> tuple[set[str], dict[str, list[str]]]:
        """Which of ``keys`` are stored, and the stored keys of each of ``xdr_ids``, oldest
        first (the first keeps the card)."""
        if self._pg:
            found = _PG_XDR_ROWS.run(self._conn, {"ids": list(xdr_ids), "keys": list(keys)})
        else:
            ids, id_params = in_list("x", xdr_ids)
            own, key_params = in_list("k", keys)
            sql = _XDR_ROWS.format(ids=ids, keys=own)
            found = Statement(sql).run(self._conn, {**id_params, **key_params})
        stored: set[str] = set()
        twins: dict[str, list[str]] = {}
        for key, xdr_id in found.rows:
            stored.add(str(key))
            if xdr_id is not None:
                twins.setdefault(str(xdr_id), []).append(str(key))
        return stored, twins

    def _add_receipts(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the receipts in one statement; the webhook ids that were new."""
        if not rows:
            return set()
        params: dict[str, Any] = {}
        for i, row in enumerate(rows):
            params.update({f"w{i}": row["webhook_id"], f"k{i}": row["incident_key"]})
            params.update({f"n{i}": row["incident_name"], f"a{i}": row["received_at"]})
        values = ", ".join(f"(:w{i}, :k{i}, :n{i}, :a{i})" for i in range(len(rows)))
        found = Statement(_RECEIPTS.format(values=values)).run(self._conn, params)
        return {str(row[0]) for row in found.rows}

    def receipt_names(self, webhook_ids: Sequence[str]) -> dict[str, str]:
        """The incident name recorded with each earlier receipt."""
        if not webhook_ids:
            return {}
        if self._pg:
            found = _PG_RECEIPT_NAMES.run(self._conn, {"ids": list(webhook_ids)})
        else:
            fragment, params = in_list("w", webhook_ids)
            sql = "SELECT webhook_id, incident_name FROM webhook_receipts WHERE webhook_id IN "
            found = Statement(sql + fragment).run(self._conn, params)
        return {str(row[0]): str(row[1]) for row in found.rows}

    def _versions(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        fragment, params = in_list("k", keys)
        sql = 'SELECT "key", version FROM incidents WHERE "key" IN '
        found = Statement(sql + fragment).run(self._conn, params)
        return {str(row[0]): str(row[1]) for row in found.rows}

    def upsert_incidents(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store each incident row (one per key) unless a newer version is stored."""
        if not self._pg:
            UPSERT_INCIDENT.run_many(self._conn, rows)
        elif rows:
            _PG_UPSERT_INCIDENTS.run(
                self._conn,
                {
                    "keys": [row["key"] for row in rows],
                    "versions": [row["version"] for row in rows],
                    "severities": [row["severity"] for row in rows],
                    "payloads": [row["payload"] for row in rows],
                    "ats": [row["updated_at"] for row in rows],
                    "numbers": [row["number"] for row in rows],
                    "xdr_ids": [row["xdr_id"] for row in rows],
                },
            )

    def _targets(self, keys: Sequence[str], rank: int) -> Targets:
        found = Targets()
        if not keys:
            return found
        fragment, params = in_list("k", keys)
        statement = Statement(_SHOWING + "IN " + fragment + _SUBSCRIBED)
        for key, conversation_id, min_rank, sources in statement.run(
            self._conn, {**params, "rank": rank}
        ).rows:
            found.add(key, str(conversation_id), int(min_rank), sources)
        return found

    def waiting(self, ordering_keys: Sequence[str]) -> set[str]:
        """Which of ``ordering_keys`` already have a pending job."""
        if not ordering_keys:
            return set()
        if self._pg:
            found = _PG_WAITING.run(self._conn, {"keys": list(ordering_keys)})
        else:
            fragment, params = in_list("o", ordering_keys)
            sql = "SELECT ordering_key FROM outbox WHERE status = 'pending' AND ordering_key IN "
            found = Statement(sql + fragment).run(self._conn, params)
        return {str(row[0]) for row in found.rows}

    def lock(self, key: int) -> None:
        """Hold the transaction lock ``key`` until the commit (PostgreSQL; SQLite has a single
        writer and needs none)."""
        if self._pg:
            _PG_LOCK.run(self._conn, {"key": key})

    def add_jobs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert outbox job rows, in order."""
        INSERT_JOB.run_many(self._conn, rows)
