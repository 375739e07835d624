"""What ``make run`` (``python app.py serve --playground``, sandbox mode) sets up without any
configuration: the example requirement catalog, and a sandbox SharePoint site provisioned at
start, so evidence requests, filing and the audit log work in the Playground; Defender XDR's
incidents from the Graph sandbox; a seeded Resource Graph for ``cmdb sync``; and Azurite with
a sample cost export for ``costs ingest``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app import CATALOG, EXAMPLE_CATALOG, create_app
from core.catalog import load_catalog
from core.settings import Settings
from core.settings.defender import DefenderSettings
from core.store import cmdb_cis, cost_queries
from core.store.store import Store
from sandbox.arm_resourcegraph_seed import SEED_SUBSCRIPTIONS
from sandbox.azurite import installed as azurite_installed
from sandbox.embedded import SEEDED_RESOURCES
from sandbox.playground import PACKAGE, REPO_ROOT
from sandbox.playground_client import PlaygroundClient
from tests.e2e.card_support import content
from tests.e2e.evidence_support import Running, make_run, make_run_settings
from tests.processes import free_port
from tests.support import make_settings
from wiring.sandboxes import AZURITE_READY

LISTS = ("Evidence", "Evidence Requests", "Audit Log")


@pytest.fixture
def playground_installed() -> None:
    """Skip unless the Agents Playground can start (``make run`` starts it)."""
    if shutil.which("node") is None or not (REPO_ROOT / "node_modules" / PACKAGE).is_dir():
        pytest.skip(f"node or {PACKAGE} (npm ci) is missing: make run's Playground cannot start")


def test_create_app_playground_without_catalog_uses_example(
    tmp_path: Path, sqlite_url: str
) -> None:
    """With ``--playground`` and no WARDEN_REQUIREMENTS_FILE the example catalog is loaded."""
    app = create_app(make_run_settings(tmp_path, sqlite_url), playground=True)
    example = [r.id for r in load_catalog(EXAMPLE_CATALOG)]
    assert [r.id for r in app[CATALOG]] == example
    assert "ISO27001-A.8.5-MFA-ADMINS" in example


def test_create_app_without_playground_has_no_catalog(tmp_path: Path, sqlite_url: str) -> None:
    """Outside ``make run`` nothing is assumed: no catalog, evidence requests stay off."""
    app = create_app(make_settings(tmp_path, sqlite_url))
    assert CATALOG not in app


def test_create_app_playground_keeps_configured_catalog(tmp_path: Path, sqlite_url: str) -> None:
    """A configured catalog wins over the example."""
    mine = tmp_path / "catalog.yaml"
    text = EXAMPLE_CATALOG.read_text(encoding="utf-8")
    mine.write_text(text.split("\n  - id: CIS-AZ-3.1")[0] + "\n", encoding="utf-8")
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"requirements_file": mine}
    )
    app = create_app(settings, playground=True)
    assert [r.id for r in app[CATALOG]] == ["ISO27001-A.8.5-MFA-ADMINS"]


def test_catalog_check_accepts_the_example(tmp_path: Path) -> None:
    """``python app.py catalog check`` reads the catalog ``make run`` uses: all valid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(WARDEN_VAR_DIR=str(tmp_path), WARDEN_MODE="sandbox", COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "app.py", "catalog", "check", str(EXAMPLE_CATALOG)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 requirement(s)" in done.stdout and "valid" in done.stdout


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_readyz_sharepoint_on_and_site_provisioned_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``/readyz`` shows SharePoint on; the sandbox site has its library and lists, and a
    second start (same ``var/``) provisions nothing twice."""
    settings = make_run_settings(tmp_path, sqlite_url)
    for _start in range(2):
        async with make_run(settings) as running:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{running.warden_url}/readyz") as answer,
            ):
                body = await answer.json()
            state = await running.sharepoint_state()
        connectors = body["checks"]["connectors"]
        assert connectors["sharepoint"]["state"] == "on"
        assert connectors["sentinel"]["state"] == "on"
        [site] = state["sites"]
        assert site["path"] == "sites/Compliance"
        names = Counter(x["display_name"] for x in site["lists"])
        assert all(names[name] == 1 for name in LISTS), names


async def _command(settings: Settings, *args: str) -> tuple[int, str]:
    """``python app.py <args>`` run beside ``make run`` (its var dir, database and ports), as a
    user does in another terminal; its exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        WARDEN_VAR_DIR=str(settings.var_dir),
        WARDEN_DATABASE_URL=str(settings.database_url),
        WARDEN_MODE="sandbox",
        WARDEN_SANDBOX_ARM_PORT=str(settings.sandbox_arm_port),
        WARDEN_SANDBOX_GRAPH_PORT=str(settings.sandbox_graph_port),
        WARDEN_SENTINEL_WEBHOOK_SECRETS=",".join(settings.webhook_secrets),
        WARDEN_SANDBOX_AZURITE_PORT=str(settings.sandbox_azurite_port),
        COLUMNS="250",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _raise_defender_incident(running: Running, properties: dict[str, Any]) -> None:
    """Raise an incident in the sandbox Defender XDR (the Graph sandbox's control API)."""
    url = f"{running.graph_url}/_sandbox/security/incidents"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=properties, ssl=running.ca) as answer,
    ):
        assert answer.status == 201, await answer.text()


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_defender_subscription_incident_arrives_as_card(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A channel that subscribes ``from defender`` gets the sandbox Defender XDR's new
    incident as a card in the Playground, with nothing configured."""
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"defender": DefenderSettings.model_validate({"poll_seconds": 0.3})}
    )
    async with make_run(settings) as running, PlaygroundClient(running.playground_url) as client:
        config = await client.test_config()
        channel = config.general_channel_id
        async with client.stream() as stream:
            await client.install(channel)
            await stream.wait_for_create(from_id=config.bot_id, conversation_id=channel)
            mark = stream.mark()
            await client.send_message(channel, "subscribe incidents from defender")
            answer = await stream.wait_for_create(from_id=config.bot_id, since=mark)
            assert "Subscribed" in content(answer), content(answer)
            await _raise_defender_incident(
                running, {"displayName": "Email reported as phish", "status": "inProgress"}
            )
            card = await stream.wait_for(
                lambda f: f.action == "createMessage" and "Email reported as phish" in content(f),
                since=mark,
                timeout=30,
            )
    assert card.conversation_id == channel
    assert "Active" in content(card)


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_demo_incident_xdr_one_card_from_both_sources_with_deployment(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``demo incident --xdr`` raises the incident in the sandbox Defender XDR and Sentinel's
    twin of it: a channel subscribed to both gets ONE card saying so, with the deployment
    the command placed 12 minutes before the first alert."""
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"defender": DefenderSettings.model_validate({"poll_seconds": 0.3})}
    )
    title = "Web shell dropped on a finance App Service"
    async with make_run(settings) as running, PlaygroundClient(running.playground_url) as client:
        config = await client.test_config()
        channel = config.general_channel_id
        async with client.stream() as stream:
            await client.install(channel)
            await client.send_message(channel, "subscribe incidents from sentinel and defender")
            await stream.wait_for(lambda f: "Subscribed" in content(f))
            code, out = await _command(
                settings, "demo", "incident", "--xdr", "--title", title, "--url", running.warden_url
            )
            assert code == 0, out
            assert "12 minutes before the first alert" in out, out
            card = await stream.wait_for(
                lambda f: (
                    title in content(f)
                    and "Sentinel and Defender XDR" in content(f)
                    and "12 minutes before the first alert" in content(f)
                ),
                timeout=40,
            )
            posts = {f.message_id for f in stream.frames if f.action == "createMessage"}
            assert card.message_id in posts
            cards = [
                f for f in stream.frames if f.action == "createMessage" and title in content(f)
            ]
            assert len(cards) == 1, [content(f) for f in cards]


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_demo_budget_card_in_the_subscribed_channel(
    tmp_path: Path, sqlite_url: str
) -> None:
    """With nothing configured the budget webhook is on: ``subscribe budgets <sub>`` in
    General, then ``demo budget`` beside make run posts the alert's card there; an alert of
    a scope nobody subscribed goes to General too (the operators' channel)."""
    settings = make_run_settings(tmp_path, sqlite_url)
    scope = SEED_SUBSCRIPTIONS[0]
    async with make_run(settings) as running, PlaygroundClient(running.playground_url) as client:
        config = await client.test_config()
        channel = config.general_channel_id
        async with client.stream() as stream:
            await client.install(channel)
            await client.send_message(channel, f"subscribe budgets {scope}")
            await stream.wait_for(lambda f: scope in content(f) and "udget" in content(f))
            mark = stream.mark()
            code, out = await _command(
                settings, "demo", "budget", "--scope", scope, "--url", running.warden_url
            )
            assert code == 0, out
            card = await stream.wait_for(
                lambda f: f.action == "createMessage" and "prod-monthly" in content(f),
                since=mark,
                timeout=30,
            )
            bad, out = await _command(settings, "demo", "budget", "--scope", "not-a-scope")
    assert card.conversation_id == channel
    assert "1,050.25" in content(card) or "1050.25" in content(card), content(card)
    assert bad == 2 and "is not a budget scope" in out, out


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_cmdb_sync_command_stores_sandbox_resources(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``python app.py cmdb sync`` in another terminal reads make run's sandbox Resource Graph:
    every seeded resource becomes a CI, and the CIs missing tags are listed."""
    settings = make_run_settings(tmp_path, sqlite_url)
    async with make_run(settings):
        code, out = await _command(settings, "cmdb", "sync")
    assert code == 0, out
    assert f"{SEEDED_RESOURCES} resource(s)" in out, out
    assert "need tags" in out, out
    store = Store.from_url(sqlite_url)
    try:
        counts = await cmdb_cis.counts(store)
    finally:
        await store.close()
    assert counts["active"] == SEEDED_RESOURCES


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_costs_ingest_command_ingests_sample_export(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``python app.py costs ingest`` beside make run ingests the sample export from its
    Azurite: 30 days of costs of the sandbox's resources, which ``costs top`` then ranks."""
    if not azurite_installed():
        pytest.skip("azurite (npm ci) is missing: make run starts no blob storage")
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"sandbox_azurite_port": free_port()}
    )
    async with make_run(settings) as running:
        assert running.app is not None
        await asyncio.wait_for(running.app[AZURITE_READY].wait(), timeout=90)
        code, out = await _command(settings, "costs", "ingest")
    assert code == 0, out
    assert f"1 partition(s) ingested ({SEEDED_RESOURCES * 30:,} rows)" in out, out
    store = Store.from_url(sqlite_url)
    end = datetime.now(UTC).date()
    try:
        top = await cost_queries.top_resources(
            store, SEED_SUBSCRIPTIONS[0], end - timedelta(days=29), end, limit=3
        )
    finally:
        await store.close()
    assert len(top) == 3 and top[0].cost >= top[-1].cost > 0


async def _readyz(running: Running) -> dict[str, Any]:
    """The connectors' states ``/readyz`` shows."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{running.warden_url}/readyz") as answer,
    ):
        body: dict[str, Any] = await answer.json()
    connectors: dict[str, Any] = body["checks"]["connectors"]
    return connectors


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_sandbox_itsm_jsm_connects_jsm_in_servicenow_place(
    tmp_path: Path, sqlite_url: str
) -> None:
    """By default ServiceNow is make run's ITSM; with ``WARDEN_SANDBOX_ITSM=jsm`` the JSM
    sandbox serves on its port and ``/readyz`` shows JSM connected in ServiceNow's place."""
    default = make_run_settings(tmp_path / "default", sqlite_url)
    async with make_run(default) as running:
        states = await _readyz(running)
    assert states["servicenow"]["state"] == "on" and states["jsm"]["state"] != "on"
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(update={"sandbox_itsm": "jsm"})
    async with make_run(settings) as running:
        states = await _readyz(running)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{settings.sandbox_jsm_port}/rest/api/3/issue/SEC-4"
            ) as answer,
        ):
            refused = answer.status
    assert states["jsm"]["state"] == "on", states
    assert states["servicenow"]["state"] != "on", states
    assert refused == 401  # the sandbox JSM serves, and wants Warden's credentials


async def test_costs_ingest_without_make_run_says_what_to_configure(
    tmp_path: Path, sqlite_url: str
) -> None:
    """With no make run serving and nothing configured, ``costs ingest`` names the variables
    to set instead of trying an Azurite that is not there."""
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"sandbox_azurite_port": free_port()}
    )
    code, out = await _command(settings, "costs", "ingest")
    assert code == 1, out
    assert "WARDEN_COSTS__CONNECTION_STRING" in out, out


async def test_sandbox_azurite_answering_badly_leaves_warden_running(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Azurite that accepts connections and closes them unanswered (a port another process
    took, a start that went wrong): the sample export is not written, Warden says so and
    goes on, and stopping it raises nothing."""
    import contextlib
    from collections.abc import AsyncIterator

    import sandbox.azurite
    from sandbox.azurite import connection_string
    from wiring.sandboxes import sandbox_azurite

    site = "/subscriptions/0000/resourceGroups/rg-web/providers/Microsoft.Web/sites/web-01"

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    @contextlib.asynccontextmanager
    async def closing_azurite(_port: int, _location: Path) -> AsyncIterator[str]:
        yield connection_string(port)

    monkeypatch.setattr(sandbox.azurite, "serving_azurite", closing_azurite)
    settings = make_settings(tmp_path, sqlite_url, sandbox_azurite_port=port)
    ready = asyncio.Event()
    serving = contextlib.asynccontextmanager(sandbox_azurite)
    async with server, serving(ready, settings, [site]):
        for _ in range(600):
            if "refused the sample cost export" in caplog.text:
                break
            await asyncio.sleep(0.1)
    assert not ready.is_set()
    assert "the sandbox Azurite refused the sample cost export" in caplog.text
