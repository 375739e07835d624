"""Local Azure Key Vault (secrets only) over HTTPS, for Warden's settings and its tests.

The vault borrows its identity from the ARM sandbox (``sandbox.arm``) rather than having
one of its own: it serves TLS with that sandbox's CA and server certificate (so one CA
bundle, ``WARDEN_ARM_CA_BUNDLE``, trusts both), and it accepts the tokens that sandbox's
Entra ID token endpoint issues for ``https://vault.azure.net``. The wire format is the
one in ``sandbox.keyvault_api``: Key Vault's challenge, list paging, bundles and errors.

Use it from tests (the real azure-keyvault-secrets and azure-identity against it)::

    async with run_arm_sandbox() as arm, run_keyvault_sandbox(arm) as vault:
        vault.set_secret("MICROSOFT-APP-PASSWORD", "…")
        SecretClient(vault.url, credential, connection_verify=str(arm.ca_path),
                     verify_challenge_resource=False)   # the vault is on 127.0.0.1

Only the ARM sandbox's own client may list, get and set secrets until told otherwise
(``grant``, ``revoke``); everyone else meets 403 ``ForbiddenByRbac``. Standalone:
``python -m sandbox.keyvault`` starts both servers (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.arm_cli import log_to_stdout, stop_signal, write_info
from sandbox.connector_faults import Fault, FaultQueue
from sandbox.keyvault_api import (
    MAX_PAGE,
    VaultError,
    VaultRecord,
    add_vault_routes,
    not_found,
    vault_middleware,
)
from sandbox.request_log import RequestLog

__all__ = ["PERMISSIONS", "KeyVaultSandbox", "VaultRecord", "run_keyvault_sandbox"]

logger = logging.getLogger("sandbox.keyvault")

PERMISSIONS = ("list", "get", "set")
"""What a caller may be allowed to do with secrets."""


@dataclass
class SecretVersion:
    """One version of a secret; ``created``/``updated`` are epoch seconds."""

    version: str
    value: str = field(repr=False)
    enabled: bool
    created: int
    content_type: str | None = None
    tags: dict[str, str] | None = None

    def attributes(self) -> dict[str, Any]:
        """Key Vault's ``attributes`` object of this version."""
        return {
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.created,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }


@dataclass
class StoredSecret:
    """A secret's name as first set, and its versions, oldest first."""

    name: str
    versions: list[SecretVersion] = field(default_factory=list)


class KeyVaultSandbox(RequestLog[VaultRecord]):
    """State and behaviour of one fake vault: secrets, permissions, faults, request log.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(
        self,
        identity: ArmSandbox,
        *,
        name: str = "warden-sandbox",
        page_size: int = MAX_PAGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create an empty vault trusting ``identity``'s tokens; its own client may do all."""
        super().__init__("key vault sandbox")
        self.identity = identity
        self.name = name
        self.page_size = page_size
        self.clock = clock
        self.secrets: dict[str, StoredSecret] = {}
        self.permissions: dict[str, set[str]] = {identity.client_id.lower(): set(PERMISSIONS)}
        self.faults = FaultQueue()
        self.url = ""

    @property
    def resource_id(self) -> str:
        """The vault's ARM resource id (in 403 messages)."""
        return (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/warden"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    def make_app(self) -> web.Application:
        """Build a new aiohttp application backed by this vault's state."""
        app = web.Application(middlewares=[vault_middleware(self)])
        add_vault_routes(app, self)
        return app

    # Secrets.

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> SecretVersion:
        """Add a new (latest) version of secret ``name``; names compare without case."""
        stored = self.secrets.setdefault(name.lower(), StoredSecret(name))
        version = SecretVersion(
            uuid.uuid4().hex, value, enabled, int(self.clock()), content_type, tags
        )
        stored.versions.append(version)
        return version

    def set_enabled(self, name: str, enabled: bool, version: str = "") -> None:
        """Enable or disable a version of a secret (the latest unless named); KeyError."""
        self._version(name, version).enabled = enabled

    def _secret(self, name: str) -> StoredSecret:
        """The stored secret ``name``; raises the 404 if there is none."""
        stored = self.secrets.get(name.lower())
        if stored is None:
            raise not_found(name)
        return stored

    def _version(self, name: str, version: str) -> SecretVersion:
        """A version of a secret (the latest for ""); raises the 404 if there is none."""
        stored = self._secret(name)
        if not version:
            return stored.versions[-1]
        for candidate in stored.versions:
            if candidate.version == version.lower():
                return candidate
        raise not_found(name, version)

    def bundle(self, name: str, version: str) -> dict[str, Any]:
        """A version as GET answers it (SecretBundle); raises the 404 or 403 answer."""
        stored = self._secret(name)
        found = self._version(name, version)
        if not found.enabled:
            message = "Operation get is not allowed on a disabled secret."
            raise VaultError(403, "Forbidden", message, inner="SecretDisabled")
        body: dict[str, Any] = {
            "value": found.value,
            "id": f"{self.url}/secrets/{stored.name}/{found.version}",
            "attributes": found.attributes(),
        }
        return body | self._extras(found)

    def listed(self) -> list[dict[str, Any]]:
        """Every secret as the list answers it (SecretItem, no value), by name."""
        items = []
        for key in sorted(self.secrets):
            stored = self.secrets[key]
            latest = stored.versions[-1]
            item = {"id": f"{self.url}/secrets/{stored.name}", "attributes": latest.attributes()}
            items.append(item | self._extras(latest))
        return items

    @staticmethod
    def _extras(version: SecretVersion) -> dict[str, Any]:
        """The optional members of a bundle or item (only those that are set)."""
        extras: dict[str, Any] = {}
        if version.content_type is not None:
            extras["contentType"] = version.content_type
        if version.tags:
            extras["tags"] = dict(version.tags)
        return extras

    # Access and faults.

    def allowed(self, app_id: str, permission: str) -> bool:
        """Tell whether application ``app_id`` may ``permission`` (list, get, set)."""
        return permission in self.permissions.get(app_id.lower(), set())

    def grant(self, client_id: str, *permissions: str) -> None:
        """Allow an application the given permissions (all when none are named)."""
        wanted = set(permissions or PERMISSIONS)
        if not wanted <= set(PERMISSIONS):
            raise ValueError(f"unknown permissions: {sorted(wanted - set(PERMISSIONS))}")
        self.permissions.setdefault(client_id.lower(), set()).update(wanted)

    def revoke(self, client_id: str, *permissions: str) -> None:
        """Take permissions (all when none are named) away from an application."""
        held = self.permissions.get(client_id.lower(), set())
        held.difference_update(permissions or PERMISSIONS)

    def add_fault(self, fault: Fault) -> Fault:
        """Queue a fault (status, delay or drop; see ``sandbox.connector_faults``)."""
        return self.faults.add(fault)

    def calls(self, operation: str | None = None, *, successful: bool = False) -> list[VaultRecord]:
        """Logged requests of one operation (GetSecrets, GetSecret, …), or all of them."""
        return [
            entry
            for entry in self.requests
            if (operation is None or entry.operation == operation) and (entry.ok or not successful)
        ]


@contextlib.asynccontextmanager
async def run_keyvault_sandbox(
    identity: ArmSandbox,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    vault: KeyVaultSandbox | None = None,
) -> AsyncIterator[KeyVaultSandbox]:
    """Serve a vault for the block, over TLS with ``identity``'s CA; yield it with ``url``.

    ``identity`` must be a running ARM sandbox served with TLS. ``port=0`` picks a free
    port; ``url`` (``https://127.0.0.1:<port>``) has no trailing slash.
    """
    if identity.tls is None:
        raise RuntimeError("the Key Vault sandbox needs an ARM sandbox served over TLS")
    served = vault or KeyVaultSandbox(identity)
    runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=identity.tls.server_context())
        await site.start()
        shown = f"[{host}]" if ":" in host else host
        served.url = f"https://{shown}:{runner.addresses[0][1]}"
        yield served
    finally:
        await runner.cleanup()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the standalone server's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.keyvault",
        description="Local Azure Key Vault (secrets) with the ARM sandbox's Entra ID.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="vault port; 0 picks a free one")
    parser.add_argument("--tls-dir", type=Path, help="keep the CA and certificate here")
    parser.add_argument(
        "--secrets-file", type=Path, help='JSON {"SECRET-NAME": "value", …} to load at start'
    )
    parser.add_argument("--info-file", type=Path, help="write connection details (0600 JSON)")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG logs requests)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run the vault and the Entra ID it trusts until SIGINT or SIGTERM."""
    stop = stop_signal()
    secrets = json.loads(args.secrets_file.read_text("utf-8")) if args.secrets_file else {}
    async with (
        run_arm_sandbox(args.host, 0, tls_dir=args.tls_dir) as arm,
        run_keyvault_sandbox(arm, args.host, args.port) as vault,
    ):
        for name, value in secrets.items():
            vault.set_secret(name, str(value))
        logger.info("vault %s (%d secrets); Entra ID at %s", vault.url, len(secrets), arm.url)
        logger.info("client id %s; trust the CA in %s", arm.client_id, arm.ca_path)
        if args.info_file is not None:
            write_info(args.info_file, arm, vaultUrl=vault.url)
            logger.info("connection details written to %s", args.info_file)
        await stop.wait()
    logger.info("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m sandbox.keyvault``: parse, log to stdout, serve."""
    args = parse_args(argv)
    log_to_stdout(args.log_level)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
