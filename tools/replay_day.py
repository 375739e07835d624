"""A day in the SOC and in compliance, recorded for ``app.py replay`` and its tests.

:func:`day_stack` starts the Bot Connector, ARM (Sentinel, Entra ID), Graph (SharePoint, its
site provisioned) and ServiceNow sandboxes and a Warden wired to them (optionally recording
to ``WARDEN_RECORD_DIR``); :func:`drive_day` plays the day through Warden's real endpoints:
the bot added to a channel and subscribed; a Sentinel incident webhook (the official example
incident, which every ARM sandbox holds), its card, *Assign to me*, a comment, ``link <n> to
CHG…``, a severity change (ServiceNow gets a work note) and ServiceNow's business rule
reporting the change's new state; then ``request evidence`` from an owner, the owner's
attestation and its approval (filed in SharePoint, audited). ``python -m tools.replay_day``
regenerates ``tests/recordings/day.jsonl`` from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from app import STORE, WORKER, create_app
from cards.verbs import CardVerb
from connectors.sentinel.connection import tls_verify
from connectors.sentinel.setup import credential as arm_credential
from core.settings import Settings
from core.settings.outbox import OutboxSettings
from core.settings.servicenow import ServiceNowSettings
from core.signing import sign
from core.store import outbox
from core.store.store import Store
from graph.provision import provision
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.arm_seed import EXAMPLE_SCOPE
from sandbox.connector import ConnectorSandbox, run_connector_sandbox
from sandbox.embedded import GRAPH_ROLES
from sandbox.graph import DEFAULT_HOST, GraphSandbox, run_graph_sandbox
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

REPO_ROOT = Path(__file__).resolve().parent.parent
RECORDING = REPO_ROOT / "tests" / "recordings" / "day.jsonl"
SENTINEL_SECRET = "whsec_" + "cmVwbGF5LWRheS1zZW50aW5lbC1zZWNyZXQtMTIz"
SERVICENOW_SECRET = "whsec_" + "cmVwbGF5LWRheS1zZXJ2aWNlbm93LXNlY3JldC0x"
INCIDENT = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
"""The incident of Sentinel's ``GetIncidentById`` example, which every ARM sandbox holds."""
CHANNEL = "19:soc-replay@thread.tacv2"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT = {"id": "28:warden-bot", "name": "Warden"}
RESPONDER = {
    "id": "29:adele",
    "name": "Adele Vance",
    "aadObjectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
}
OWNER = {
    "id": "29:olivia",
    "name": "Olivia Owner",
    "aadObjectId": "0a0a0a0a-0000-4000-8000-00000000000a",
}
REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
REQUIREMENT = "ISO-A.8.13"
CATALOG = f"""\
requirements:
  - id: {REQUIREMENT}
    title: Backups are tested
    guidance: A restore test report.
    evidence: [attestation]
    owner: olivia@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 14
"""
SITE = "sites/Compliance"


@dataclass
class Stack:
    """A running Warden, its sandboxes and its URL."""

    url: str
    app: web.Application
    settings: Settings
    connector: ConnectorSandbox
    arm: ArmSandbox
    snow: ServiceNowSandbox
    graph: GraphSandbox
    change: str
    """The number of the change request the day links the incident to."""

    @property
    def store(self) -> Store:
        """Warden's store."""
        return self.app[STORE]

    async def settled(self) -> None:
        """Wait until Warden's outbox has no job waiting or running."""

        async def idle() -> bool:
            return not await outbox.list_jobs(self.store, outbox.UNFINISHED)

        await self.app[WORKER].wait_until(idle)


def _catalog(var_dir: Path) -> Path:
    path = var_dir / "requirements.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


def day_settings(
    var_dir: Path, arm: ArmSandbox, snow: ServiceNowSandbox, graph: GraphSandbox, **more: Any
) -> Settings:
    """A sandbox Warden connected to the sandboxes: webhooks in, no polling of Sentinel,
    evidence filed in the sandbox SharePoint."""
    values: dict[str, Any] = {
        "requirements_file": _catalog(var_dir),
        "sharepoint_site": f"{DEFAULT_HOST}:/{SITE}",
        "var_dir": var_dir,
        "database_url": f"sqlite+aiosqlite:///{var_dir / 'warden.db'}",
        "sentinel_webhook_secrets": SENTINEL_SECRET,
        "arm_endpoint": arm.url,
        "arm_ca_bundle": arm.ca_path,
        "graph_endpoint": graph.graph_url,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
        "sentinel_comments_seconds": 3600.0,
        "servicenow": ServiceNowSettings.model_validate(
            {
                "instance_url": snow.url,
                "username": snow.username,
                "password": snow.password,
                "webhook_secrets": [SERVICENOW_SECRET],
                "poll_seconds": 3600.0,
            }
        ),
        "outbox": OutboxSettings.model_validate(
            {
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.3,
                "poll_seconds": 0.2,
                "lease_seconds": 5,
            }
        ),
        **more,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def day_stack(var_dir: Path, *, record_dir: Path | None = None) -> AsyncIterator[Stack]:
    """The sandboxes and a Warden on a free port; everything stopped on exit."""
    async with (
        run_connector_sandbox() as connector,
        run_arm_sandbox(sandbox=_directory()) as arm,
        run_graph_sandbox(arm, state_dir=var_dir / "graph") as graph,
        run_servicenow_sandbox() as snow,
    ):
        graph.add_site(DEFAULT_HOST, SITE)
        settings = day_settings(var_dir, arm, snow, graph, record_dir=record_dir)
        await _provision(settings)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            snow.set_business_rule(f"{url}/api/webhooks/servicenow", SERVICENOW_SECRET)
            change = snow.create(
                "change_request", {"short_description": "Reset the CFO's sign-in", "state": "-4"}
            )
            yield Stack(url, app, settings, connector, arm, snow, graph, str(change["number"]))
        finally:
            await runner.cleanup()


def _directory() -> ArmSandbox:
    """An ARM sandbox whose app may manage SharePoint and whose directory knows the people."""
    arm = ArmSandbox()
    arm.register_client(arm.client_id, arm.client_secret, graph_roles=GRAPH_ROLES)
    arm.add_user(
        OWNER["name"],
        "olivia@contoso.com",
        object_id=OWNER["aadObjectId"],
        mail="olivia@contoso.com",
    )
    arm.set_member_groups(RESPONDER["aadObjectId"], [REVIEWERS])
    return arm


async def _provision(settings: Settings) -> None:
    """The evidence site's library and lists, as ``make run`` provisions them."""
    credential = arm_credential(settings)
    try:
        await provision(settings, credential, verify=tls_verify(settings))
    finally:
        await credential.close()


def _activity(stack: Stack, kind: str, **fields: Any) -> dict[str, Any]:
    """A channel activity from the responder, as Teams delivers it."""
    return {
        "type": kind,
        "id": f"f:{uuid.uuid4().hex}" if kind != "message" else str(uuid.uuid4().int)[:13],
        "serviceUrl": stack.connector.url,
        "channelId": "msteams",
        "from": RESPONDER,
        "recipient": BOT,
        "conversation": {
            "id": CHANNEL,
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
        },
        "channelData": {
            "teamsChannelId": CHANNEL,
            "team": {"id": CHANNEL, "name": "Security Operations"},
            "channel": {"id": CHANNEL, "name": "General"},
            "tenant": {"id": TENANT},
        },
        **fields,
    }


async def _send(client: httpx.AsyncClient, stack: Stack, activity: dict[str, Any]) -> Any:
    response = await client.post(f"{stack.url}/api/messages", json=activity)
    if response.status_code >= 300:
        raise RuntimeError(f"{activity['type']} answered {response.status_code}")
    return response.json() if response.content else None


async def _say(
    client: httpx.AsyncClient, stack: Stack, text: str, mentions: tuple[dict[str, str], ...] = ()
) -> None:
    """The responder @mentions Warden with ``text`` (which may @mention ``mentions``)."""
    entities = [
        {"type": "mention", "mentioned": who, "text": f"<at>{who['name']}</at>"}
        for who in (BOT, *mentions)
    ]
    activity = _activity(
        stack,
        "message",
        text=f"<at>{BOT['name']}</at> {text}",
        textFormat="plain",
        entities=entities,
    )
    await _send(client, stack, activity)


async def _click(
    client: httpx.AsyncClient, stack: Stack, verb: CardVerb, inputs: dict[str, Any]
) -> None:
    """Click ``verb`` on the incident's newest card (its current version)."""
    await stack.settled()
    data = {"incident": _key(stack), "version": _version(_newest_card(stack)), **inputs}
    action = {"action": {"type": "Action.Execute", "verb": verb.value, "data": data}}
    await _send(
        client,
        stack,
        _activity(
            stack, "invoke", name="adaptiveCard/action", replyToId=_card_id(stack), value=action
        ),
    )


async def _evidence_click(
    client: httpx.AsyncClient,
    stack: Stack,
    verb: CardVerb,
    user: dict[str, str],
    inputs: dict[str, Any],
) -> None:
    """``user`` clicks ``verb`` on the newest evidence card offering it."""
    await stack.settled()
    cards = [
        r.body
        for r in stack.connector.posts(CHANNEL, successful=True)
        + stack.connector.updates(CHANNEL, successful=True)
        if not r.body.get("replyToId") and _button(r.body, verb.value) is not None
    ]
    if not cards:
        raise RuntimeError(f"no evidence card offers {verb.value}")
    data = {**(_button(cards[-1], verb.value) or {}), **inputs}
    action = {"action": {"type": "Action.Execute", "verb": verb.value, "data": data}}
    activity = _activity(stack, "invoke", name="adaptiveCard/action", value=action)
    await _send(client, stack, {**activity, "from": user})


def _button(card: Any, verb: str) -> dict[str, Any] | None:
    """The data of the button with ``verb`` anywhere in ``card``; None when there is none."""
    if isinstance(card, dict):
        if card.get("verb") == verb and isinstance(card.get("data"), dict):
            return dict(card["data"])
        card = list(card.values())
    for value in card if isinstance(card, list) else []:
        if (found := _button(value, verb)) is not None:
            return found
    return None


def _key(stack: Stack) -> str:
    return EXAMPLE_SCOPE.incident_id(INCIDENT).lower()


def _newest_card(stack: Stack) -> Any:
    bodies = [
        r.body
        for r in stack.connector.posts(CHANNEL, successful=True)
        + stack.connector.updates(CHANNEL, successful=True)
        if _key(stack) in str(r.body).lower()
    ]
    if not bodies:
        raise RuntimeError("no card for the incident")
    return bodies[-1]


def _card_id(stack: Stack) -> str:
    posts = [
        r
        for r in stack.connector.posts(CHANNEL, successful=True)
        if _key(stack) in str(r.body).lower()
    ]
    return str(posts[0].activity_id or "") if posts else ""


def _version(card: Any) -> str:
    """The ``version`` in the first triage button's data of a card."""
    if isinstance(card, dict):
        data = card.get("data")
        if isinstance(data, dict) and "version" in data:
            return str(data["version"])
        card = list(card.values())
    for value in card if isinstance(card, list) else []:
        if found := _version(value):
            return found
    return ""


async def drive_day(stack: Stack) -> None:
    """The day: install, subscribe, an incident, triage clicks, a link, a change's update."""
    incident = stack.arm.incident(INCIDENT, EXAMPLE_SCOPE)
    async with httpx.AsyncClient(timeout=30.0) as client:
        await _send(client, stack, _activity(stack, "conversationUpdate", membersAdded=[BOT]))
        await _say(client, stack, "subscribe incidents")
        body = httpx.Request("POST", "/", json=incident).content
        headers = {**sign(SENTINEL_SECRET, body), "content-type": "application/json"}
        answer = await client.post(
            f"{stack.url}/api/webhooks/sentinel", content=body, headers=headers
        )
        if answer.status_code != 202:
            raise RuntimeError(f"the incident webhook answered {answer.status_code}")
        await stack.connector.wait_for(lambda log: log.posts(CHANNEL, successful=True))
        await _click(client, stack, CardVerb.ASSIGN_ME, {})
        await _click(client, stack, CardVerb.COMMENT, {"comment": "Looking at the sign-in logs"})
        await stack.settled()
        number = stack.arm.incident(INCIDENT, EXAMPLE_SCOPE)["properties"]["incidentNumber"]
        await _say(client, stack, f"link {number} to {stack.change}")
        await _click(client, stack, CardVerb.SEVERITY, {"severity": "Medium"})  # noted there
        await stack.settled()
        record = stack.snow.find("change_request", stack.change)
        if record is None:
            raise RuntimeError(f"no change {stack.change}")
        stack.snow.portal_update("change_request", str(record["sys_id"]), {"state": "-2"})
        await stack.snow.rules.drain()  # the business rule's webhook has been answered
        await stack.settled()
        asked = f"request evidence {REQUIREMENT} from <at>{OWNER['name']}</at>"
        await _say(client, stack, asked, (OWNER,))
        attestation = {"kind": "attestation", "attestation": "Restored the finance DB on 2 Oct."}
        await _evidence_click(client, stack, CardVerb.EVIDENCE_SUBMIT, OWNER, attestation)
        await _evidence_click(client, stack, CardVerb.EVIDENCE_APPROVE, RESPONDER, {})
        await stack.settled()


async def record_day(target: Path) -> int:
    """Drive the day with recording on and copy the recording to ``target``; its lines."""
    with tempfile.TemporaryDirectory(prefix="warden-day-") as tmp:
        record_dir = Path(tmp) / "recordings"
        async with day_stack(Path(tmp), record_dir=record_dir) as stack:
            await drive_day(stack)
        files = sorted(record_dir.glob("*.jsonl"))
        if len(files) != 1:
            raise RuntimeError(f"expected one day's recording, found {len(files)}")
        lines = files[0].read_bytes().count(b"\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[0], target)
    return lines


def main() -> None:
    """``python -m tools.replay_day [FILE]``: regenerate the recorded day."""
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else RECORDING
    lines = asyncio.run(record_day(target))
    sys.stdout.write(f"{lines} requests recorded in {target}\n")


if __name__ == "__main__":
    main()
