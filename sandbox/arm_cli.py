"""Command line of the standalone ARM sandbox: ``python -m sandbox.arm --port 0``.

Logs go to stdout through ``logging``. The client secret is never logged: give it with
``--client-secret`` / ``AZURE_CLIENT_SECRET``, or let the sandbox make one and write the
connection details (URL, authority, tenant, client id and secret, CA path) to a 0600 JSON
file with ``--info-file``. ``AZURE_TENANT_ID`` and ``AZURE_CLIENT_ID`` are honoured too,
so Warden and the sandbox can share one environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.connector_records import SANDBOX_TENANT_ID

logger = logging.getLogger("sandbox.arm")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the standalone server's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.arm",
        description="Local ARM (Sentinel incidents 2025-12-01) + Entra ID + Graph sandbox.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=20, help="generated incidents to add")
    parser.add_argument(
        "--tenant-id",
        default=os.environ.get("AZURE_TENANT_ID", SANDBOX_TENANT_ID),
        help="tenant id (default: AZURE_TENANT_ID or the sandbox tenant)",
    )
    parser.add_argument(
        "--client-id",
        default=os.environ.get("AZURE_CLIENT_ID"),
        help="client id (default: AZURE_CLIENT_ID or a new GUID)",
    )
    parser.add_argument(
        "--client-secret",
        default=os.environ.get("AZURE_CLIENT_SECRET"),
        help="client secret (default: AZURE_CLIENT_SECRET or a random one); never logged",
    )
    parser.add_argument("--tls-dir", type=Path, help="keep the CA and certificate here")
    parser.add_argument("--info-file", type=Path, help="write connection details (0600 JSON)")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG logs requests)")
    return parser.parse_args(argv)


def write_info(path: Path, sandbox: ArmSandbox, **extra: str) -> None:
    """Write the connection details, secret included, to a file only the owner can read.

    ``extra`` adds members (another sandbox's address, e.g. ``vaultUrl``).
    """
    info = {
        "url": sandbox.url,
        "authority": sandbox.authority,
        "tokenUrl": sandbox.token_url,
        "graphUrl": sandbox.graph_url,
        "tenantId": sandbox.tenant_id,
        "clientId": sandbox.client_id,
        "clientSecret": sandbox.client_secret,
        "caPath": str(sandbox.ca_path),
        **extra,
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def stop_signal() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call it in the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def log_to_stdout(level: str) -> None:
    """Send the sandboxes' log lines to stdout at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )


async def serve(args: argparse.Namespace) -> None:
    """Run the sandbox until SIGINT or SIGTERM."""
    stop = stop_signal()
    sandbox = ArmSandbox(
        tenant_id=args.tenant_id, client_id=args.client_id, client_secret=args.client_secret
    )
    async with run_arm_sandbox(
        args.host, args.port, sandbox=sandbox, tls_dir=args.tls_dir, seed=args.seed
    ) as served:
        logger.info("listening on %s (tenant %s)", served.url, served.tenant_id)
        logger.info("client id %s; trust the CA in %s", served.client_id, served.ca_path)
        if args.info_file is not None:
            write_info(args.info_file, served)
            logger.info("connection details written to %s", args.info_file)
        await stop.wait()
    logger.info("stopped")


def run(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, set up logging to stdout and serve."""
    args = parse_args(argv)
    log_to_stdout(args.log_level)
    asyncio.run(serve(args))
