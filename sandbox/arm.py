"""Local Azure Resource Manager server for Microsoft Sentinel incidents, with Entra ID and Graph.

One HTTPS server (a private test CA, see ``sandbox.arm_tls``) speaks three wire formats:

* ARM, Sentinel incidents api-version 2025-12-01 under ``/subscriptions/...`` (routes in
  ``sandbox.arm_routes``, rules in ``sandbox.arm_rules``, OData in ``sandbox.arm_odata``);
* Entra ID: ``POST /{tenant}/oauth2/v2.0/token`` and discovery (``sandbox.arm_login``);
* Microsoft Graph ``POST /v1.0/users/{id}/checkMemberGroups`` (``sandbox.arm_graph``), and
  groups, service principals and users' ``appRoleAssignments`` (``sandbox.arm_approles``);
* Azure Resource Graph ``POST /providers/Microsoft.ResourceGraph/resources``
  (``sandbox.arm_resourcegraph``, empty until seeded).

Use it from tests::

    async with run_arm_sandbox() as arm:
        credential = ClientSecretCredential(
            arm.tenant_id, arm.client_id, arm.client_secret,
            authority=arm.authority, connection_verify=str(arm.ca_path),
        )
        ...

or standalone: ``python -m sandbox.arm --port 0``. The control API lives under
``/_sandbox/`` (see ``sandbox.arm_control``).
What tests do to incidents is ``sandbox.arm_incidents``; to deployments,
``sandbox.arm_deployments``.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.arm_api import sandbox_middleware
from sandbox.arm_approles import AppDirectory
from sandbox.arm_control import add_control_routes
from sandbox.arm_deployments import Deployments, deploy_before_incident, seed_with_incidents
from sandbox.arm_deployments_routes import add_deployment_control_routes
from sandbox.arm_directory import Directory, DirectoryUser, default_users
from sandbox.arm_graph import add_graph_routes
from sandbox.arm_incidents import DEFAULT_SCOPE, IncidentControls
from sandbox.arm_log import SandboxLog
from sandbox.arm_login import add_login_routes
from sandbox.arm_policy import PolicyStates
from sandbox.arm_policy_routes import add_policy_control_routes, seed_states
from sandbox.arm_records import RequestRecord
from sandbox.arm_resourcegraph import ResourceGraph
from sandbox.arm_resourcegraph_routes import add_resource_graph_routes
from sandbox.arm_routes import add_arm_routes
from sandbox.arm_seed import EXAMPLE_SCOPE, Scope, example_incidents
from sandbox.arm_store import IncidentStore
from sandbox.arm_tls import TlsFiles, make_tls_files
from sandbox.arm_tokens import ClientApp, TokenIssuer
from sandbox.connector_faults import Fault
from sandbox.connector_records import SANDBOX_TENANT_ID
from sandbox.sentinel_samples import SUBSCRIPTION

__all__ = [
    "ARM_RESOURCE",
    "ARM_SANDBOX_KEY",
    "DEFAULT_SCOPE",
    "ArmSandbox",
    "Fault",
    "RequestRecord",
    "Scope",
    "run_arm_sandbox",
]

ARM_RESOURCE = "https://management.azure.com"
"""The audience of ARM tokens (scope ``https://management.azure.com/.default``)."""


class ArmSandbox(IncidentControls, SandboxLog):
    """State and behaviour of one fake ARM + Entra ID + Graph: data, request log, faults.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(
        self,
        *,
        tenant_id: str = SANDBOX_TENANT_ID,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: int = 3599,
        page_size: int = 50,
        policy_page_size: int = 1000,
        seed_examples: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a sandbox with one registered client and the official examples' data.

        ``client_id``/``client_secret`` default to a new GUID and a random secret.
        ``token_lifetime`` is in seconds; ``page_size`` is the list page without ``$top``;
        ``policy_page_size`` the records per Policy Insights page.
        ``clock`` (epoch seconds) drives token expiry and timestamps; see ``advance_clock``.
        """
        super().__init__()
        self.tenant_id = tenant_id
        self._base_clock = clock
        self._offset = 0.0
        self.issuer = TokenIssuer(tenant_id, lifetime=token_lifetime, clock=self.clock)
        self.clients: dict[str, ClientApp] = {}
        app = self.register_client(client_id or str(uuid.uuid4()), client_secret)
        self.client_id, self.client_secret = app.client_id, app.secret
        self.directory = Directory(default_users())
        self.apps = AppDirectory()
        """Groups' names, service principals and app role assignments (``sandbox.arm_approles``)."""
        self.default_author: dict[str, Any] = {"name": "Warden sandbox"}
        self.store = IncidentStore(self.now, self.directory, page_size)
        self.store.add_workspace(DEFAULT_SCOPE)
        self.policy = PolicyStates(self.now, policy_page_size)
        self.resource_graph = ResourceGraph(tenant_id, self.clock)
        self.deployments = Deployments(self.now)
        self.url = ""
        self.tls: TlsFiles | None = None
        self._seed_examples = seed_examples
        if seed_examples:
            self.load_examples()

    # Addresses.

    @property
    def authority(self) -> str:
        """The Entra ID authority to give azure-identity (``https://host:port``)."""
        return self.url

    @property
    def token_url(self) -> str:
        """The v2.0 token endpoint of the sandbox tenant."""
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def graph_url(self) -> str:
        """The Graph base URL (``.../v1.0``)."""
        return f"{self.url}/v1.0"

    @property
    def ca_path(self) -> Path:
        """The PEM file of the CA that signed the server certificate (TLS servers only)."""
        if self.tls is None:
            raise RuntimeError("this sandbox is not served over TLS")
        return self.tls.ca_path

    def ssl_context(self) -> ssl.SSLContext:
        """Return a verifying client SSL context that trusts only the sandbox CA."""
        if self.tls is None:
            raise RuntimeError("this sandbox is not served over TLS")
        return self.tls.client_context()

    def make_app(self) -> web.Application:
        """Build a new aiohttp application backed by this sandbox's state."""
        app = web.Application(middlewares=[sandbox_middleware(self)])
        app[ARM_SANDBOX_KEY] = self
        add_policy_control_routes(app, self)
        add_resource_graph_routes(app, self)
        add_deployment_control_routes(app, self)
        add_control_routes(app, self)
        add_arm_routes(app, self)
        add_graph_routes(app, self)
        add_login_routes(app, self)
        return app

    # Clock and identities.

    def clock(self) -> float:
        """Return the sandbox time in epoch seconds (the base clock plus any advance)."""
        return self._base_clock() + self._offset

    def now(self) -> datetime.datetime:
        """Return the sandbox time as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward (tokens expire, timestamps move) without waiting."""
        self._offset += seconds

    def register_client(
        self,
        client_id: str,
        secret: str | None = None,
        *,
        display_name: str = "Warden",
        graph_roles: Sequence[str] | None = None,
    ) -> ClientApp:
        """Register an application that may get tokens; returns it (with its secret)."""
        app = ClientApp(client_id, secret or f"sbx~{uuid.uuid4().hex}", display_name)
        if graph_roles is not None:
            app.graph_roles = tuple(graph_roles)
        self.clients[client_id.lower()] = app
        return app

    def issue_token(
        self,
        resource: str = ARM_RESOURCE,
        *,
        client_id: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        """Return a token as the token endpoint would issue it (for tests and tools)."""
        app = self.clients[(client_id or self.client_id).lower()]
        roles = app.graph_roles if "graph" in resource else ()
        token, _ = self.issuer.issue(app, resource, lifetime=lifetime, roles=roles)
        return token

    def author_for(self, claims: dict[str, Any]) -> dict[str, Any]:
        """Return the comment author (ClientInfo) for a verified token's claims."""
        user = self.directory.find(str(claims.get("oid", ""))) if claims.get("oid") else None
        if user is not None:
            return user.client_info()
        app = self.clients.get(str(claims.get("appid", "")).lower())
        if app is not None:
            return {"objectId": app.object_id, "name": app.display_name}
        return dict(self.default_author)

    def add_user(self, display_name: str, user_principal_name: str, **kwargs: Any) -> DirectoryUser:
        """Add a directory user (see ``Directory.add_user``) and return it."""
        return self.directory.add_user(display_name, user_principal_name, **kwargs)

    def set_member_groups(self, user: str, group_ids: Sequence[str]) -> DirectoryUser:
        """Set the groups a user (object id or UPN) is a member of, for checkMemberGroups."""
        return self.directory.set_groups(user, group_ids)

    # Incidents (the rest in ``sandbox.arm_incidents``), deployments and policy states.

    def load_examples(self) -> None:
        """Store the official examples' incidents (workspace myRg/myWorkspace) and policy states."""
        self.policy.load_examples()
        workspace = self.store.add_workspace(EXAMPLE_SCOPE)
        for generated, comments in example_incidents():
            self.store.insert(workspace, generated, comments)

    def seed_deployments(self, *, per_group: int = 6, random_seed: int | None = 0) -> int:
        """Deployments in the groups of the Resource Graph resources, and one before each
        incident of the default workspace (``arm_deployments.seed_with_incidents``)."""
        return seed_with_incidents(
            self.deployments,
            self.resource_graph.rows.values(),
            self.workspace().incidents.values(),
            per_group=per_group,
            random_seed=random_seed,
        )

    def deploy_before_incident(
        self,
        incident: str,
        name: str,
        minutes_before: float,
        resource_id: str | None = None,
        scope: Scope | None = None,
    ) -> dict[str, Any]:
        """Deploy a resource ``incident`` names ``minutes_before`` its first alert
        (``arm_deployments.deploy_before_incident``); KeyError for an unknown incident."""
        stored = self.workspace(scope).incidents.get(incident.lower())
        if stored is None:
            raise KeyError(f"no incident {incident!r}")
        rows = self.resource_graph.rows.values()
        return deploy_before_incident(
            self.deployments, rows, stored, name, minutes_before, resource_id
        )

    def seed_policy_states(
        self, count: int, *, subscription: str = SUBSCRIPTION, random_seed: int | None = None
    ) -> list[dict[str, Any]]:
        """Add ``count`` generated NonCompliant policy states in ``subscription``; returns them."""
        return seed_states(self.policy, count, subscription, random_seed, self.now())

    def reset(self) -> None:
        """Forget incidents, the log, faults and clock advances; reload the examples."""
        self.store.clear()
        self.policy.clear()
        self.resource_graph.clear()
        self.deployments.clear()
        self._log.clear()
        self.clear_faults()
        self._offset = 0.0
        if self._seed_examples:
            self.load_examples()


ARM_SANDBOX_KEY = web.AppKey("arm_sandbox", ArmSandbox)
"""Application key under which ``make_app`` stores its sandbox."""


def _url_host(host: str) -> str:
    """Return the host as it must appear in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@contextlib.asynccontextmanager
async def run_arm_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sandbox: ArmSandbox | None = None,
    tls: bool = True,
    tls_dir: Path | None = None,
    seed: int = 0,
) -> AsyncIterator[ArmSandbox]:
    """Serve a sandbox for the duration of the block; yield it with ``url`` set.

    ``port=0`` picks a free port. With ``tls`` (the default, which MSAL and azure-identity
    require) a new CA and server certificate are written to ``tls_dir`` (a temporary
    directory, removed afterwards, unless given); ``sandbox.ca_path`` is the CA file.
    ``seed`` adds that many generated incidents to the default workspace.
    ``sandbox.url`` has no trailing slash.
    """
    served = sandbox or ArmSandbox()
    if seed:
        served.seed(seed)
    with contextlib.ExitStack() as stack:
        context = None
        if tls:
            if served.tls is None:  # else: the sandbox brings its own certificate
                directory = tls_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
                served.tls = make_tls_files(directory)
            context = served.tls.server_context()
        runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            scheme = "https" if tls else "http"
            served.url = f"{scheme}://{_url_host(host)}:{runner.addresses[0][1]}"
            yield served
        finally:
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m sandbox.arm`` (see ``sandbox.arm_cli``)."""
    from sandbox.arm_cli import run

    run(argv)


if __name__ == "__main__":
    main()
