"""Memory: Warden's resident set after start, and its growth over a soak of webhook events.

Warden (durable, SQLite, one subscribed channel on the sandbox connector) receives 100,000
signed incident webhooks (``--quick``: 5,000): versions of 500 incidents, so cards are posted
and then updated in place. Prints RSS after start (goal ≤ 120 MB), after a warm-up of 2,000
events (caches, pools and lazily imported code filled) and at the end (goal: growth from the
warm figure under 10 %). RSS is read from ``/proc/<pid>/status`` of the server process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.ingest import SECRET, _subscribe, serve_process
from bench.load import build_request, run_load
from core.signing import sign
from sandbox.connector import run_connector_sandbox
from sandbox.sentinel_samples import sample_incident, updated_incident

INCIDENTS = 500
MIB = 1024 * 1024
GOAL_BYTES = 120e6
"""RSS after start: at most 120 MB (decimal megabytes, about 114.4 MiB)."""
CHUNK = 5_000
WARM_UP = 2_000
WEBHOOK = "/api/webhooks/sentinel"


def rss_mb(pid: int) -> float:
    """The resident set of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def _versions(count: int) -> list[dict[str, Any]]:
    """``count`` webhook bodies: successive versions of ``INCIDENTS`` incidents."""
    base = datetime.now(timezone.utc) - timedelta(hours=1)
    latest = [sample_incident(now=base) for _ in range(INCIDENTS)]
    bodies = []
    for index in range(count):
        slot = index % INCIDENTS
        latest[slot] = updated_incident(latest[slot], now=base + timedelta(milliseconds=index))
        bodies.append(latest[slot])
    return bodies


async def soak(base: str, events: int) -> int:
    """Send ``events`` signed webhooks over 16 connections; returns how many were accepted."""
    port = int(base.rsplit(":", 1)[1])
    accepted = 0
    bodies = _versions(events)
    for start in range(0, events, CHUNK):
        requests = []
        for resource in bodies[start : start + CHUNK]:
            body = json.dumps(resource).encode()
            headers = {**sign(SECRET, body), "Content-Type": "application/json"}
            requests.append(
                build_request("127.0.0.1", port, "/api/webhooks/sentinel", body, headers)
            )
        result = await run_load("127.0.0.1", port, requests, connections=16, seconds=600)
        accepted += result.ok
    return accepted


@dataclass(frozen=True)
class Soak:
    """Warden's resident set after start, after the warm-up and after the soak, in MiB."""

    cold: float
    warm: float
    end: float
    accepted: int

    @property
    def growth(self) -> float:
        """Growth over the soak from the warm figure, in per cent."""
        return (self.end - self.warm) / self.warm * 100

    def rows(self) -> list[str]:
        """The Markdown table of the figures and their goals."""
        return [
            "| measure | value | goal |",
            "|---|---:|---|",
            f"| RSS after start | {self.cold:,.1f} MiB ({self.cold * MIB / 1e6:,.1f} MB) "
            f"| ≤ 120 MB {'✓' if self.cold * MIB <= GOAL_BYTES else '✗'} |",
            f"| RSS after a warm-up of {WARM_UP:,} events | {self.warm:,.1f} MiB | |",
            f"| RSS after {self.accepted:,} more webhook events | {self.end:,.1f} MiB | |",
            f"| growth over the soak (from warm) | {self.growth:+.1f} % | < 10 % |",
        ]


async def measure(events: int) -> Soak:
    """Start Warden and a connector sandbox, warm Warden up, then soak it with ``events``."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            run_connector_sandbox() as connector,
            serve_process("warden", Path(tmp) / "soak") as (base, pid),
        ):
            await _subscribe(base, connector)
            cold = rss_mb(pid)
            await soak(base, WARM_UP)
            warm = rss_mb(pid)
            accepted = await soak(base, events)
            return Soak(cold, warm, rss_mb(pid), accepted)


async def main() -> None:
    """Run the memory benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    result = await measure(5_000 if args.quick else 100_000)
    print("\n".join(result.rows()))


if __name__ == "__main__":
    asyncio.run(main())
