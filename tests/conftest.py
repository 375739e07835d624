"""Shared fixtures: a database per test (SQLite and PostgreSQL), the sandboxes (the ARM one
with resources and deployments on request, the Graph one serving Defender XDR)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

# The CLI's console (``cli.common``) reads COLUMNS once, when it is made. pytest-xdist's
# workers start with COLUMNS=80 in their environment, which would pin every command's output
# to 80 columns whatever width a test gives typer's runner; without it the width is read
# from each test's environment at print time.
os.environ.pop("COLUMNS", None)

from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.connector import ConnectorSandbox, run_connector_sandbox
from sandbox.embedded import GRAPH_ROLES
from sandbox.graph import GraphSandbox, run_graph_sandbox
from sandbox.jsm import JsmSandbox, run_jsm_sandbox
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_pg_state: dict[str, bool] = {}


async def _postgres_available() -> bool:
    if "ok" in _pg_state:
        return _pg_state["ok"]
    for attempt in range(2):
        try:
            conn = await asyncpg.connect(PG_DSN, timeout=5)
        except (OSError, asyncpg.PostgresError):
            if attempt == 0:
                _start_postgres()
            continue
        await conn.close()
        _pg_state["ok"] = True
        return True
    _pg_state["ok"] = False
    return False


def _start_postgres() -> None:
    """Start the machine's PostgreSQL cluster when it is installed but stopped."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(p.name for p in Path("/etc/postgresql").iterdir()):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                check=False,
                capture_output=True,
                timeout=60,
            )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}"
        return
    if not await _postgres_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 and could not be started")
    name = f"warden_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin = await asyncpg.connect(PG_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def connector() -> AsyncIterator[ConnectorSandbox]:
    """The Bot Connector sandbox, served over HTTP on a free port."""
    async with run_connector_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A SQLite database file for tests that need only one store."""
    yield f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}"


@pytest.fixture
async def arm(request: pytest.FixtureRequest) -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox (Sentinel, its Entra ID and Graph) over TLS.

    In a module marked ``arm_deployments`` (``random_seed`` optional), Resource Graph holds
    40 resources and ARM a few deployments in each of their groups.
    """
    sandbox = ArmSandbox()
    marker = request.node.get_closest_marker("arm_deployments")
    if marker is not None:
        random_seed = marker.kwargs.get("random_seed", 11)
        sandbox.resource_graph.seed(40, random_seed=random_seed)
        rows = sandbox.resource_graph.rows.values()
        sandbox.deployments.seed(rows, per_group=4, random_seed=random_seed)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def defender_graph(arm: ArmSandbox) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox serving Defender XDR, trusting the ARM sandbox's tokens (Warden's
    application roles as ``make run`` grants them)."""
    arm.register_client(arm.client_id, arm.client_secret, graph_roles=GRAPH_ROLES)
    async with run_graph_sandbox(arm) as served:
        yield served


@pytest.fixture
async def snow() -> AsyncIterator[ServiceNowSandbox]:
    """The ServiceNow sandbox with its seed records."""
    async with run_servicenow_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def jsm() -> AsyncIterator[JsmSandbox]:
    """The Jira Service Management sandbox with its example requests (project SEC)."""
    async with run_jsm_sandbox() as served:
        yield served
