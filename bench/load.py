"""A lean HTTP/1.1 load generator: keep-alive connections replaying pre-built requests.

Faster than any Python HTTP client library, so that a bare aiohttp server, not the client,
is what limits the baseline. Each connection sends one request at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

FRESH = "7777777777777"
"""A placeholder activity id (13 digits, like Teams'): ``run_load(..., fresh=True)`` gives
each request sent its own id in its place, so that a server that acts once per activity
(Warden keeps receipts) does the whole turn every time, as it would for real traffic."""
_IDS = itertools.count(int(time.time() * 1000))


def with_fresh_id(body: str, activity_id: str) -> str:
    """``body`` with every occurrence of ``activity_id`` replaced by the ``FRESH`` placeholder."""
    return body.replace(activity_id, FRESH)


@dataclass
class LoadResult:
    """What a load run achieved."""

    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one keep-alive POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    fresh: bool = False,
) -> LoadResult:
    """Replay ``requests`` round-robin over ``connections`` for ``seconds``; with ``fresh``,
    each request's ``FRESH`` placeholder becomes an activity id never sent before."""
    result = LoadResult()
    placeholder = FRESH.encode()
    deadline = time.perf_counter() + seconds

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        index = offset
        try:
            while time.perf_counter() < deadline and index < len(requests):
                request = requests[index]
                if fresh:
                    request = request.replace(placeholder, str(next(_IDS)).encode())
                started = time.perf_counter()
                writer.write(request)
                index += connections
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                if status < 300:
                    result.ok += 1
                else:
                    result.failed += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    result.seconds = time.perf_counter() - start
    return result
