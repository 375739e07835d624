"""Parquet partitions summed per (resource, day), row group by row group, with pyarrow.

``ParquetCosts.open`` reads the footer of a seekable file (``RangedBlob`` over the blob) and
finds the columns ``Columns`` finds in a CSV header (actual/amortized or FOCUS names); each
``step`` decodes one record batch of those columns only and adds it to the sums, as the CSV
parser does. Nothing holds more than a read buffer per column and one batch.

pyarrow is imported here, when a Parquet partition is read, never at Warden's start. A file
pyarrow cannot read (bad magic, a truncated footer or page), a required column missing or of
the wrong type, or a cost that is not a number is a ``CorruptPartition``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.costexports.errors import CorruptPartition
from connectors.costexports.mapping import Columns, CostSums
from core.costs import ResourceDay

BATCH_ROWS = 65_536
"""Rows decoded at a time (with text columns read as dictionaries, a few MB)."""
FOLD_ROWS = 50_000
"""Partial sums kept in Arrow before they are added to the Python sums (``pending`` counts
those only; ``take`` adds the partial ones first)."""
READ_BYTES = 1 << 20
"""pyarrow's read buffer per column (it streams pages through it)."""

_TEXT = ("string", "large_string", "string_view")


def _kind(arrow_type: Any) -> str:
    """``text``, ``number``, ``moment`` or ``other``: what a column of ``arrow_type`` holds."""
    import pyarrow as pa

    types = pa.types
    if str(arrow_type) in _TEXT:
        return "text"
    if types.is_integer(arrow_type) or types.is_floating(arrow_type):
        return "number"
    if types.is_decimal(arrow_type):
        return "number"
    if types.is_date(arrow_type) or types.is_timestamp(arrow_type):
        return "moment"
    return "other"


@dataclass
class ParquetCosts(CostSums):
    """Sums a Parquet partition's cost per (resource, day), one record batch a step."""

    _batches: Iterator[Any] | None = None
    _names: tuple[str, str, str, str | None] = ("", "", "", None)
    _partials: list[Any] = field(default_factory=list)
    _partial_rows: int = 0

    def take(self) -> list[ResourceDay]:
        """The resource-days summed since the last take (see ``CostSums.take``)."""
        self._fold()
        return super().take()

    def open(self, source: io.IOBase) -> None:
        """Read the footer of ``source`` and check its columns; ``CorruptPartition`` if the
        file is not Parquet or lacks a column Warden needs (or has it with the wrong type)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(source, buffer_size=READ_BYTES, pre_buffer=False)
            schema = file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPartition(f"not a readable Parquet file: {exc}") from None
        names = list(schema.names)
        at = Columns.from_header(names)
        wanted = (
            (at.resource, ("text",)),
            (at.day, ("text", "moment")),
            (at.cost, ("number", "text")),
            (at.currency, ("text",)),
        )
        for index, kinds in wanted:
            if index is not None and _kind(schema.field(index).type) not in kinds:
                field = schema.field(index)
                allowed = " or ".join(kinds)
                raise CorruptPartition(f"column {field.name} is {field.type}, not {allowed}")
        currency = names[at.currency] if at.currency is not None else None
        self._names = (names[at.resource], names[at.day], names[at.cost], currency)
        read = [name for name in self._names if name is not None]
        text = [name for name in read if _kind(schema.field(name).type) == "text"]
        try:  # text columns as dictionaries: a batch holds indices, not a string per row
            file = pq.ParquetFile(
                source, buffer_size=READ_BYTES, pre_buffer=False, read_dictionary=text
            )
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPartition(f"not a readable Parquet file: {exc}") from None
        self._batches = file.iter_batches(batch_size=BATCH_ROWS, columns=read, use_threads=False)

    def step(self) -> bool:
        """Decode and sum the next record batch; False once the file is read."""
        import pyarrow as pa

        if self._batches is None:
            raise RuntimeError("ParquetCosts.step before open")
        try:
            batch = next(self._batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPartition(
                f"unreadable Parquet data after row {self.rows}: {exc}"
            ) from None
        if batch is None:
            return False
        self._add(batch)
        return True

    def _add(self, batch: Any) -> None:
        """Add one record batch's attributed rows to the sums."""
        import pyarrow as pa
        import pyarrow.compute as pc

        resource_name, day_name, cost_name, currency_name = self._names
        first, self.rows = self.rows + 1, self.rows + batch.num_rows
        resource = pc.fill_null(batch.column(resource_name), "")
        attributed = pc.not_equal(resource, "")
        kept = batch.filter(attributed)
        self.unattributed += batch.num_rows - kept.num_rows
        if kept.num_rows == 0:
            return
        try:
            cost = pc.cast(kept.column(cost_name), pa.float64())
        except pa.ArrowInvalid:
            raise CorruptPartition(f"data rows {first}-{self.rows}: cost is not a number") from None
        if cost.null_count:
            raise CorruptPartition(f"data rows {first}-{self.rows}: a cost is missing")
        day = pc.fill_null(pc.cast(kept.column(day_name), pa.string()), "")
        table = pa.table({"resource": kept.column(resource_name), "day": day, "cost": cost})
        summed = table.group_by(["resource", "day"], use_threads=False).aggregate([("cost", "sum")])
        resource_key = pc.cast(summed.column("resource"), pa.string())
        self._partials.append(summed.set_column(0, "resource", resource_key))
        self._partial_rows += summed.num_rows
        if self._partial_rows >= FOLD_ROWS:
            self._fold()
        if not self.currency and currency_name is not None:
            found = pc.drop_null(kept.column(currency_name))
            if len(found):
                self.currency = str(found[0].as_py())

    def _fold(self) -> None:
        """Add the batches' partial sums (kept in Arrow) to the sums, summed once more."""
        import pyarrow as pa

        if not self._partials:
            return
        table = pa.concat_tables(self._partials)
        self._partials, self._partial_rows = [], 0
        summed = table.group_by(["resource", "day"], use_threads=False).aggregate(
            [("cost_sum", "sum")]
        )
        sums = self._sums
        for resource, day, total in zip(
            summed.column("resource").to_pylist(),
            summed.column("day").to_pylist(),
            summed.column("cost_sum_sum").to_pylist(),
            strict=True,
        ):
            key = (resource, day)
            sums[key] = sums.get(key, 0.0) + total
