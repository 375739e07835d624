"""Group commit loses nothing: every webhook answered 202 is stored, even after a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from core.crypto import PayloadCipher, ensure_dev_key
from core.store.store import Store
from sandbox.sentinel_samples import sample_incident
from tests.processes import free_port, wait_ready
from tests.support import SECRET, signed

ROOT = Path(__file__).resolve().parents[2]


async def test_ingest_killed_mid_batch_every_acknowledged_incident_stored(
    database_url: str, tmp_path: Path
) -> None:
    """Webhooks flow in from 16 clients while Warden is SIGKILLed: no 202 is ever lost."""
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_PORT": str(port),
        "WARDEN_VAR_DIR": str(tmp_path),
        "WARDEN_SENTINEL_WEBHOOK_SECRETS": SECRET,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process, not a call
        [sys.executable, "app.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    enough = asyncio.Event()
    try:
        await wait_ready(url, proc)
        resources = [sample_incident(title=f"crash {n}") for n in range(2_000)]
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for resource in resources:
            queue.put_nowait(resource)

        async def client(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                resource = queue.get_nowait()
                body, headers = signed(resource)
                try:
                    async with session.post(
                        f"{url}/api/webhooks/sentinel", data=body, headers=headers
                    ) as answer:
                        if answer.status == 202:
                            acknowledged.append(str(resource["id"]).lower())
                            if len(acknowledged) >= 300:
                                enough.set()
                except aiohttp.ClientError:
                    return  # the server is gone

        async def killer() -> None:
            async with asyncio.timeout(60):
                await enough.wait()
            proc.send_signal(signal.SIGKILL)

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(killer(), *(client(session) for _ in range(16)))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300
    store = Store.from_url(database_url, cipher=PayloadCipher([ensure_dev_key(tmp_path)]))
    try:
        missing = [key for key in acknowledged if await store.incident(key) is None]
    finally:
        await store.close()
    assert missing == [], f"{len(missing)} acknowledged incidents were lost"
