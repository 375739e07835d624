"""Local Microsoft Graph server: SharePoint sites, lists, items, drives, uploads, $batch, and
Defender XDR incidents and alerts (``security/incidents``, ``security/alerts_v2``).

A separate HTTPS server that borrows the identity of an ARM sandbox (``sandbox.arm``): its
token issuer verifies bearer tokens (Graph audience, same tenant and signing key), its TLS
CA and certificate serve this server too, and its directory answers
``POST /v1.0/users/{id}/checkMemberGroups`` here as well (the ARM sandbox's own handler), so
``graph_url`` is the one Graph base URL Warden needs. A separate server keeps upload bodies
streaming to disk: the ARM sandbox's middleware reads every ``/v1.0`` body into memory as
JSON, which large files and the unauthenticated ``uploadUrl`` cannot go through.

Use it from tests::

    async with run_arm_sandbox() as arm, run_graph_sandbox(arm) as graph:
        graph.add_site("contoso.sharepoint.com", "sites/Evidence")
        client = graph_client(credential, http, base_url=graph.graph_url)

The control API lives under ``/_sandbox/`` (see ``sandbox.graph_control``); a read-only
page for auditors is ``GET /_sandbox/sharepoint``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.arm import ArmSandbox
from sandbox.arm_graph import add_graph_routes
from sandbox.arm_records import RequestRecord
from sandbox.connector import ConnectorSandbox
from sandbox.connector_faults import Fault, FaultQueue
from sandbox.graph_api import graph_middleware
from sandbox.graph_batch import add_batch_route
from sandbox.graph_channels import add_channel_routes
from sandbox.graph_control import add_graph_control_routes
from sandbox.graph_drive import DriveFiles, add_drive_routes
from sandbox.graph_security import add_security_routes
from sandbox.graph_security_store import SecurityStore
from sandbox.graph_sharepoint import add_sharepoint_routes
from sandbox.graph_store import SharePointStore, Site, SpList
from sandbox.graph_teamwork import Teamwork, add_teamwork_routes
from sandbox.request_log import RequestLog

__all__ = ["Fault", "GraphSandbox", "run_graph_sandbox"]

DEFAULT_HOST = "contoso.sharepoint.com"
"""The SharePoint host name of the sandbox tenant."""


class GraphSandbox(RequestLog[RequestRecord]):
    """State and behaviour of one fake Graph for SharePoint: data, files, log and faults.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(self, arm: ArmSandbox, state_dir: Path | None = None) -> None:
        """Create a sandbox trusting ``arm``'s tokens; state in ``state_dir`` if given.

        Without ``state_dir`` lists live in memory and files in a temporary directory
        (made by ``run_graph_sandbox``); with it, both survive restarts.
        """
        super().__init__("graph sandbox")
        self.arm = arm
        self.state_dir = state_dir
        self.sharepoint = SharePointStore(arm.now, state_dir)
        self.files: DriveFiles | None = None
        self.teamwork = Teamwork()
        self.security = SecurityStore(arm.now)
        """Defender XDR incidents and alerts (``sandbox.graph_security``)."""
        self.faults = FaultQueue()
        self.down_retry_after: float | None = None
        self.down = False
        self.url = ""
        self.channels: ConnectorSandbox | None = None
        """Where Teams channel messages come from (``sandbox.graph_channels``), when set."""

    @property
    def graph_url(self) -> str:
        """The Graph base URL (``.../v1.0``)."""
        return f"{self.url}/v1.0"

    def add_site(self, hostname: str = DEFAULT_HOST, path: str = "sites/Evidence") -> Site:
        """Create (or return) a site by host and server-relative path."""
        return self.sharepoint.add_site(hostname, path)

    def add_fault(self, fault: Fault) -> Fault:
        """Queue a fault for the Graph routes and return it."""
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Drop queued faults and leave "down" mode."""
        self.faults.clear()
        self.down = False

    def calls(
        self, operation: str | None = None, *, successful: bool = False
    ) -> list[RequestRecord]:
        """Return logged requests with this operation name (route name) and outcome."""
        return [
            entry
            for entry in self._log
            if (operation is None or entry.operation == operation) and (not successful or entry.ok)
        ]

    def drive_json(self, site: Site, library: SpList) -> dict[str, Any]:
        """Return the drive resource of a document library."""
        return {
            "id": library.drive_id,
            "name": library.display_name,
            "driveType": "documentLibrary",
            "createdDateTime": library.created,
            "lastModifiedDateTime": library.modified,
            "webUrl": f"{site.web_url}/{library.name}",
            "owner": {"group": {"displayName": site.display_name}},
            "quota": {"state": "normal"},
        }

    def make_app(self) -> web.Application:
        """Build a new aiohttp application backed by this sandbox's state."""
        if self.files is None:
            raise RuntimeError("set sandbox.files (run_graph_sandbox does) before make_app")
        app = web.Application(middlewares=[graph_middleware(self)])
        add_graph_control_routes(app, self)
        add_sharepoint_routes(app, self)
        add_drive_routes(app, self)
        add_batch_route(app, self)
        add_channel_routes(app, self)
        add_security_routes(app, self)
        add_graph_routes(app, self.arm)
        add_teamwork_routes(app, self.arm.directory, self.teamwork)
        return app

    def reset(self) -> None:
        """Forget sites, files, the log and faults."""
        self.sharepoint.clear()
        self.security.clear()
        if self.files is not None:
            self.files.clear()
        self._log.clear()
        self.clear_faults()


@contextlib.asynccontextmanager
async def run_graph_sandbox(
    arm: ArmSandbox,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sandbox: GraphSandbox | None = None,
    state_dir: Path | None = None,
) -> AsyncIterator[GraphSandbox]:
    """Serve a Graph sandbox for the block, over TLS with the (running) ARM sandbox's CA.

    ``state_dir`` keeps lists (``sharepoint.json``) and files (``files/``) across runs;
    without it a temporary directory holds the files and is removed afterwards.
    """
    served = sandbox or GraphSandbox(arm, state_dir)
    if arm.tls is None:
        raise RuntimeError("the ARM sandbox must be served over TLS first")
    with contextlib.ExitStack() as stack:
        root = served.state_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        served.files = served.files or DriveFiles(root / "files")
        runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=arm.tls.server_context())
            await site.start()
            served.url = f"https://{host}:{runner.addresses[0][1]}"
            yield served
        finally:
            await runner.cleanup()
