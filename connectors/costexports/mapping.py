"""Cost Management exports, pure: the run's manifest, and partitions parsed as a stream.

An export run writes ``<directory>/<export>/<yyyyMMdd-yyyyMMdd>/<run id>/manifest.json``
listing its partitions (``blobs[{blobName, byteCount, dataRowCount}]``), how they are written
(``deliveryConfig.fileFormat`` Csv/Parquet, ``compressionMode`` gzip/none) and the run
(``runInfo{runId, submittedTime, startDate, endDate}``). A CSV partition carries either the
actual/amortized cost columns (``ResourceId, Date, CostInBillingCurrency, BillingCurrency…``)
or FOCUS ones (``ResourceId, ChargePeriodStart, BilledCost, BillingCurrency…``); ``Columns``
finds either set by name, case-insensitively.

``CostParser`` is fed the partition's bytes as they arrive (gunzipped and decoded
incrementally, cut at record boundaries) and sums cost per (resource, day); it never holds
more than one chunk of text and the sums not yet taken. Parquet partitions are summed the
same way (``CostSums``) by ``connectors.costexports.parquet``.
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from connectors.costexports.errors import CorruptPartition
from core.costs import ResourceDay
from core.errors import InvalidPayload

_RESOURCE = ("resourceid",)
_DAY = ("date", "usagedate", "chargeperiodstart", "usagedatetime")
_COST = ("costinbillingcurrency", "billedcost", "pretaxcost", "cost")
_CURRENCY = ("billingcurrency", "billingcurrencycode", "currency")
_TEXT_PIECE = 1 << 20
"""Most text decompressed from one piece of a chunk at a time (bounds memory on gzip)."""


@dataclass(frozen=True)
class ExportBlob:
    """One partition the manifest lists."""

    name: str
    byte_count: int
    row_count: int | None


@dataclass(frozen=True)
class Manifest:
    """One export run, as its manifest describes it."""

    name: str
    export_key: str
    run_key: str
    run_id: str
    period_start: str
    period_end: str
    submitted_at: float
    file_format: str
    gzip: bool
    blobs: tuple[ExportBlob, ...]


def _day(text: str) -> str:
    return text[:10] if text else ""


def _stamp(text: str | None) -> float:
    if not text:
        return 0.0
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def manifest_from_json(name: str, body: Mapping[str, Any]) -> Manifest:
    """The run the manifest at blob ``name`` describes; ``InvalidPayload`` when unreadable.

    The run key is the manifest's folder (export, period, run id); the export key drops the
    run id, so the runs of one export and period replace one another.
    """
    folder = name.rsplit("/", 1)[0] if "/" in name else ""
    try:
        run, delivery = body.get("runInfo") or {}, body.get("deliveryConfig") or {}
        blobs = tuple(
            ExportBlob(str(b["blobName"]), int(b.get("byteCount") or 0), b.get("dataRowCount"))
            for b in body["blobs"]
        )
        run_id = str(run.get("runId") or folder.rsplit("/", 1)[-1])
        export_key = folder.rsplit("/", 1)[0] if "/" in folder else folder
        return Manifest(
            name=name,
            export_key=export_key,
            run_key=folder,
            run_id=run_id,
            period_start=_day(str(run.get("startDate") or "")),
            period_end=_day(str(run.get("endDate") or "")),
            submitted_at=_stamp(run.get("submittedTime")),
            file_format=str(delivery.get("fileFormat") or "Csv"),
            gzip=str(delivery.get("compressionMode") or "none").lower() == "gzip",
            blobs=blobs,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPayload(f"unreadable export manifest {name}: {exc!r}", field="blobs") from None


@dataclass(frozen=True)
class Columns:
    """Where the fields Warden reads sit in a partition's rows."""

    resource: int
    day: int
    cost: int
    currency: int | None

    @classmethod
    def from_header(cls, header: list[str]) -> Columns:
        """The positions in ``header``; ``CorruptPartition`` naming a missing column."""
        names = {name.strip().lstrip("\ufeff").lower(): i for i, name in enumerate(header)}

        def find(options: tuple[str, ...], required: bool = True) -> int | None:
            for option in options:
                if option in names:
                    return names[option]
            if required:
                raise CorruptPartition(f"no {options[0]} column in the header")
            return None

        resource, day, cost = find(_RESOURCE), find(_DAY), find(_COST)
        assert resource is not None and day is not None and cost is not None
        return cls(resource, day, cost, find(_CURRENCY, required=False))


def scope_of(resource_id: str) -> tuple[str, str]:
    """The subscription and resource group in an ARM resource id (lower-cased; "" if none)."""
    parts = resource_id.lower().split("/")
    subscription = parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else ""
    group = parts[4] if len(parts) > 4 and parts[3] == "resourcegroups" else ""
    return subscription, group


def parse_day(text: str) -> str:
    """``YYYY-MM-DD`` from an ISO date/time or a US ``MM/DD/YYYY`` date; ValueError if neither."""
    text = text.strip()
    if "/" in text:
        month, day_, year = text.split(" ")[0].split("/")
        return date(int(year), int(month), int(day_)).isoformat()
    return date.fromisoformat(text[:10]).isoformat()


@dataclass
class CostSums:
    """Cost summed per (resource, day) as a partition is read, until taken."""

    rows: int = 0
    """Data rows read so far."""
    unattributed: int = 0
    """Rows without a resource id (marketplace, support…), not summed."""
    currency: str = ""
    _sums: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Resource-days summed and not yet taken."""
        return len(self._sums)

    def take(self) -> list[ResourceDay]:
        """The resource-days summed since the last take, one per (lower-cased resource, day)
        (ids that differ in case, or times of one day, add up); ``CorruptPartition`` for a
        bad date."""
        taken, self._sums = self._sums, {}
        merged: dict[tuple[str, str], float] = {}
        days: dict[str, str] = {}
        for (resource, raw_day), cost in taken.items():
            day = days.get(raw_day)
            if day is None:
                try:
                    day = days[raw_day] = parse_day(raw_day)
                except ValueError:
                    raise CorruptPartition(f"not a date: {raw_day[:40]!r}") from None
            key = (resource.lower(), day)
            merged[key] = merged.get(key, 0.0) + cost
        out: list[ResourceDay] = []
        for (resource, day), cost in merged.items():
            subscription, group = scope_of(resource)
            out.append(ResourceDay(resource, day, cost, self.currency, subscription, group))
        return out


@dataclass
class CostParser(CostSums):
    """Sums a CSV partition's cost per (resource, day) from its bytes, fed chunk by chunk."""

    gzip: bool = False
    _columns: Columns | None = None
    _carry: str = ""
    _unzip: Any = None
    _decode: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8-sig")())

    def __post_init__(self) -> None:
        if self.gzip:
            self._unzip = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> None:
        """Read the next bytes of the partition; ``CorruptPartition`` on bad data."""
        if self._unzip is None:
            self._text(self._decoded(data, final=False))
            return
        try:
            piece = self._unzip.decompress(data, _TEXT_PIECE)
            while True:
                self._text(self._decoded(piece, final=False))
                if not self._unzip.unconsumed_tail:
                    break
                piece = self._unzip.decompress(self._unzip.unconsumed_tail, _TEXT_PIECE)
        except zlib.error as exc:
            raise CorruptPartition(f"not gzip data: {exc}") from None

    def finish(self) -> None:
        """The partition ended: read what is left; ``CorruptPartition`` if it is cut short."""
        if self._unzip is not None and not self._unzip.eof:
            raise CorruptPartition("the gzip stream ends early")
        rest = self._carry + self._decoded(b"", final=True)
        self._carry = ""
        if rest.strip():
            self._records(rest if rest.endswith("\n") else rest + "\n")
        if self._columns is None:
            raise CorruptPartition("empty partition: no header")

    def _decoded(self, data: bytes, *, final: bool) -> str:
        try:
            return str(self._decode.decode(data, final))
        except UnicodeDecodeError as exc:
            raise CorruptPartition(f"not UTF-8 text: {exc.reason}") from None

    def _text(self, text: str) -> None:
        """Add decoded text; parse every complete record (a newline outside quotes)."""
        text = self._carry + text
        cut = text.rfind("\n")
        while cut >= 0 and text.count('"', 0, cut) % 2:
            cut = text.rfind("\n", 0, cut)
        if cut < 0:
            self._carry = text
            return
        self._carry = text[cut + 1 :]
        self._records(text[: cut + 1])

    def _records(self, block: str) -> None:
        reader = csv.reader(block.splitlines(keepends=True))
        if self._columns is None:
            header = next(reader, None)
            if header is None:
                return
            self._columns = Columns.from_header(header)
        self._sum(reader, self._columns)

    def _sum(self, reader: Any, columns: Columns) -> None:
        sums, at_resource, at_day, at_cost = self._sums, columns.resource, columns.day, columns.cost
        rows, unattributed = self.rows, 0
        try:
            for row in reader:
                if not row:
                    continue
                rows += 1
                resource = row[at_resource]
                if not resource:
                    unattributed += 1
                    continue
                key = (resource, row[at_day])
                sums[key] = sums.get(key, 0.0) + float(row[at_cost])
                if not self.currency and columns.currency is not None:
                    self.currency = row[columns.currency]
        except IndexError:
            raise CorruptPartition(f"data row {rows} has too few fields") from None
        except ValueError:
            raise CorruptPartition(f"data row {rows}: cost is not a number") from None
        finally:
            self.rows, self.unattributed = rows, self.unattributed + unattributed
