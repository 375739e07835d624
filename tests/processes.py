"""Warden as a separate process, for the tests that start, stop or kill it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import aiohttp


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 90.0) -> None:
    """Return once the process at ``url`` answers ``/readyz`` with 200; raise if it exits or
    is not ready within ``within`` seconds (several replicas starting on a busy machine)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"Warden exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # a process starting up: nothing to await but its port
    raise RuntimeError(f"Warden did not become ready within {within:.0f} s")
