"""A blob as a seekable, read-only file whose reads are ranged downloads.

Parquet keeps its footer at the end of the file, so a reader seeks: ``RangedBlob`` serves
``seek``/``tell``/``read`` from ``fetch(offset, length)`` (a ranged GET of the blob), never
holding more than one read-ahead window of it. Small reads (a footer, page headers) are
served from a window of ``window`` bytes fetched once; larger ones are fetched as asked.
"""

from __future__ import annotations

import io
from collections.abc import Callable

Fetch = Callable[[int, int], bytes]
"""Download ``length`` bytes of the blob from ``offset`` (fewer only at its end)."""
WINDOW = 1 << 20
"""Bytes fetched at least per download, kept for the reads that follow."""


class RangedBlob(io.RawIOBase):
    """The ``size`` bytes of a blob, read through ``fetch``; blocking (use it in a thread)."""

    def __init__(self, fetch: Fetch, size: int, *, window: int = WINDOW) -> None:
        """A file over ``size`` bytes that ``fetch`` downloads, ``window`` bytes at least."""
        super().__init__()
        self._fetch, self._size, self._window = fetch, size, window
        self._position = 0
        self._start, self._held = 0, b""
        self.downloads = 0
        """Ranged downloads made so far."""

    @property
    def size(self) -> int:
        """The blob's length in bytes."""
        return self._size

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def tell(self) -> int:
        """The position of the next read."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` from the start, the position or the end; the new position."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"seek before the start of the blob: {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` from the position; the bytes read (0 at the end of the blob)."""
        want = min(len(buffer), self._size - self._position)
        if want <= 0:
            return 0
        data = self._bytes(self._position, want)
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _bytes(self, offset: int, length: int) -> bytes | memoryview:
        """``length`` bytes at ``offset``: from the window held, else downloaded."""
        inside = offset - self._start
        if inside >= 0 and inside + length <= len(self._held):
            return memoryview(self._held)[inside : inside + length]
        if length >= self._window:
            self.downloads += 1
            return self._fetch(offset, length)
        self.downloads += 1
        self._start = offset
        self._held = self._fetch(offset, min(self._window, self._size - offset))
        return memoryview(self._held)[:length]
