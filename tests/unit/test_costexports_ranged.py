"""A blob read as a seekable file through ranged downloads."""

from __future__ import annotations

import io

import pytest

from connectors.costexports.ranged import RangedBlob

DATA = bytes(range(256)) * 40


def blob(window: int = 100) -> tuple[RangedBlob, list[tuple[int, int]]]:
    """A ``RangedBlob`` over ``DATA`` and the ranges it downloaded."""
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return DATA[offset : offset + length]

    return RangedBlob(fetch, len(DATA), window=window), asked


def test_ranged_blob_reads_anywhere_like_the_bytes() -> None:
    """Seeks from the start, the position and the end read the same bytes as the blob."""
    file, _ = blob()
    assert file.seek(-8, io.SEEK_END) == len(DATA) - 8
    assert file.read(100) == DATA[-8:]
    assert file.read(10) == b""
    file.seek(5)
    file.seek(10, io.SEEK_CUR)
    assert (file.read(300), file.tell()) == (DATA[15:315], 315)
    file.seek(0)
    assert file.read() == DATA


def test_ranged_blob_small_reads_share_one_download() -> None:
    """Small reads inside one window cost one download; a large read is fetched as asked."""
    file, asked = blob(window=100)
    file.seek(1000)
    parts = [file.read(10) for _ in range(10)]
    assert b"".join(parts) == DATA[1000:1100]
    assert asked == [(1000, 100)]
    file.seek(2000)
    assert file.read(500) == DATA[2000:2500]
    assert asked[-1] == (2000, 500)


def test_ranged_blob_refuses_a_seek_before_the_start() -> None:
    """A negative position is refused with its value."""
    file, _ = blob()
    with pytest.raises(ValueError, match="-1"):
        file.seek(-1)
