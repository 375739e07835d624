"""Command line of the standalone ServiceNow sandbox: ``python -m sandbox.servicenow``.

Logs go to stdout. Secrets are never logged: give them with ``--password`` /
``SERVICENOW_PASSWORD`` and ``--client-secret`` / ``SERVICENOW_CLIENT_SECRET``, or let the
sandbox make them and write the connection details to a 0600 JSON file (``--info-file``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from sandbox.arm_cli import log_to_stdout, stop_signal
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

logger = logging.getLogger("sandbox.servicenow")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the standalone server's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.servicenow",
        description="Local ServiceNow instance (Table API, OAuth, business rule).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--username", default=os.environ.get("SERVICENOW_USERNAME", "warden.integration")
    )
    parser.add_argument("--password", default=os.environ.get("SERVICENOW_PASSWORD"))
    parser.add_argument("--client-id", default=os.environ.get("SERVICENOW_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("SERVICENOW_CLIENT_SECRET"))
    parser.add_argument("--no-seed", action="store_true", help="start without example data")
    parser.add_argument("--rule-url", help="business rule target (with --rule-secret)")
    parser.add_argument("--rule-secret", default=os.environ.get("SERVICENOW_WEBHOOK_SECRET"))
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a private CA")
    parser.add_argument("--info-file", type=Path, help="write connection details (0600 JSON)")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG logs requests)")
    return parser.parse_args(argv)


def write_info(path: Path, sandbox: ServiceNowSandbox) -> None:
    """Write the connection details, secrets included, to a file only the owner can read."""
    info = {
        "url": sandbox.url,
        "username": sandbox.username,
        "password": sandbox.password,
        "clientId": sandbox.client_id,
        "clientSecret": sandbox.client_secret,
        "caPath": str(sandbox.tls.ca_path) if sandbox.tls else None,
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


async def serve(args: argparse.Namespace) -> None:
    """Run the sandbox until SIGINT or SIGTERM."""
    stop = stop_signal()
    sandbox = ServiceNowSandbox(
        username=args.username,
        password=args.password,
        client_id=args.client_id,
        client_secret=args.client_secret,
        seed_examples=not args.no_seed,
    )
    if args.rule_url and args.rule_secret:
        sandbox.set_business_rule(args.rule_url, args.rule_secret)
    async with run_servicenow_sandbox(args.host, args.port, sandbox=sandbox, tls=args.tls) as snow:
        info = f"; details in {args.info_file}" if args.info_file else ""
        if args.info_file is not None:
            write_info(args.info_file, snow)
        logger.info("listening on %s as user %s%s", snow.url, snow.username, info)
        logger.info("records: %s/_sandbox/servicenow", snow.url)
        await stop.wait()
    logger.info("stopped")


def run(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, log to stdout at the chosen level, and serve until stopped."""
    parsed = parse_args(argv)
    log_to_stdout(parsed.log_level)
    asyncio.run(serve(parsed))
