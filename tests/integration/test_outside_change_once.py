# ruff: noqa: F811  (fixtures imported from test_audit_trail are parameters here)
"""An evidence-change alert card exists once in the auditors' channel, even when Teams'
answer to its post is lost: the running Warden (real app, real botbuilder, real msgraph-sdk)
against the Connector sandbox, and the Graph sandbox serving SharePoint and the channel's
messages (read back to find a card whose post went unanswered)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from app import STORE, WORKER
from bot.marked_posts import POST_MARKER_PREFIX
from core.store import dlq, outbox
from core.store.card_sends import card_sends
from core.store.delta import OUTSIDE_CHANGE_JOB
from core.store.schema import outbox as outbox_table
from core.store.schema_delta import outside_change_alerts
from core.store.store import Store
from graph.audit_verify import SharePointAccess
from graph.sharepoint import ListRef
from sandbox.arm import ArmSandbox
from sandbox.connector import ConnectorSandbox, Fault
from sandbox.connector_records import StoredActivity
from sandbox.graph import GraphSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.test_audit_trail import (  # noqa: F401  (fixtures)
    ROLES,
    SITE,
    access,
    arm,
    graph,
)
from tests.integration.test_evidence_delta_app import (
    alert_of,
    edit_request,
    status_is,
    watching_warden,
)
from tests.support import channel_id

AUDITORS = channel_id("auditors")
IS_ALERT_JOB = outbox_table.c.kind == OUTSIDE_CHANGE_JOB


@pytest.fixture
def app_identity(arm: ArmSandbox) -> tuple[str, str]:
    """Warden's app registration: SharePoint, and its channels' messages (to find a card)."""
    app = arm.register_client("warden-alerts", graph_roles=[*ROLES, "ChannelMessage.Read.Group"])
    return app.client_id, app.secret


@dataclass
class Auditors:
    """A running Warden installed in the auditors' channel, watching the site."""

    warden: Warden
    connector: ConnectorSandbox
    graph: GraphSandbox
    requests: ListRef
    arm: ArmSandbox

    @property
    def app(self) -> web.Application:
        """The running Warden's application."""
        return cast(TestServer, self.warden.client.server).app

    @property
    def store(self) -> Store:
        """The running Warden's store."""
        return self.app[STORE]

    async def edit(self) -> None:
        """A person edits an Evidence Requests item in SharePoint, outside Warden."""
        await edit_request(self.graph, self.arm, self.requests)

    async def job_is(self, *statuses: str) -> None:
        """Wait until the alert card's job has one of ``statuses``."""

        async def reached() -> bool:
            return any([await status_is(self.store, IS_ALERT_JOB, s) for s in statuses])

        await self.app[WORKER].wait_until(reached, within=30)

    def alerts(self) -> list[StoredActivity]:
        """The alert cards the auditors' channel holds (whatever their posts were answered)."""
        return [a for a in self.connector.activities(AUDITORS) if alert_of(a.body)]

    def alert_posts(self) -> list[Any]:
        """The connector's log of alert card posts, answered or not."""
        return [p for p in self.connector.posts(AUDITORS) if alert_of(p.body)]

    async def in_flight(self) -> int:
        """How many card posts the store holds as started and unanswered."""
        async with self.store.reading() as conn:
            return len((await conn.execute(select(card_sends.c.marker))).all())

    async def recorded(self) -> list[str | None]:
        """The activity id recorded for each alert the watch raised."""
        stmt = select(outside_change_alerts.c.activity_id)
        async with self.store.reading() as conn:
            return list((await conn.execute(stmt)).scalars().all())

    async def lookups(self) -> dict[str, float]:
        """``warden_delivery_ambiguous_total`` by resolution: posts whose answer was lost."""
        text = await (await self.warden.client.get("/metrics")).text()
        pattern = r'^warden_delivery_ambiguous_total\{resolution="(\w+)"\} (\S+)$'
        return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


@pytest.fixture
async def auditors(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    graph: GraphSandbox,
    access: SharePointAccess,
    app_identity: tuple[str, str],
    connector: ConnectorSandbox,
) -> Auditors:
    """Warden watching the site, installed in the auditors' channel, its first round read;
    the Graph sandbox serves that channel's messages from the connector's record."""
    graph.channels = connector
    warden, ref = await watching_warden(start_warden, arm, graph, access, app_identity, AUDITORS)
    return Auditors(warden, connector, graph, ref, arm)


def _marker(activity: StoredActivity) -> str | None:
    """The post marker a card carries in its hidden element, or None."""
    card = alert_of(activity.body) or {}
    ids = [str(block.get("id", "")) for block in card.get("body", [])]
    return next((i for i in ids if i.startswith(POST_MARKER_PREFIX)), None)


async def test_alert_posted_answer_lost_retry_adopts_the_card_not_a_second(
    auditors: Auditors,
) -> None:
    """Teams stores the alert card but the connection closes before its answer: the retry
    finds the card in the channel through Graph and records it; the channel holds one card."""
    auditors.connector.add_fault(Fault(drop_after=True, method="POST", path="/activities"))
    await auditors.edit()
    await auditors.job_is(outbox.DONE)
    [card] = auditors.alerts()
    assert "edited by Megan Bowen" in str(card.body)
    assert [p.fault for p in auditors.alert_posts()] == ["cut"]  # posted once, never again
    assert await auditors.recorded() == [card.id]
    assert await auditors.in_flight() == 0
    assert await auditors.lookups() == {"found": 1.0}


async def test_alert_post_refused_forgets_it_and_the_replay_posts_once(
    auditors: Auditors,
) -> None:
    """Teams refuses the post (400): no card, nothing left in flight, the job quarantined; its
    replay posts the card at once, without looking for an earlier one."""
    auditors.connector.add_fault(Fault(status=400, method="POST", path="/activities"))
    await auditors.edit()
    await auditors.job_is(outbox.QUARANTINED)
    assert auditors.alerts() == []
    assert await auditors.in_flight() == 0
    [held] = await outbox.list_jobs(auditors.store, outbox.QUARANTINED, limit=10)
    assert await dlq.replay(auditors.store, held.id, actor="auditor@contoso.com")
    auditors.app[WORKER].wake()
    await auditors.job_is(outbox.DONE)
    [card] = auditors.alerts()
    assert [p.status for p in auditors.alert_posts()] == [400, 201]
    assert await auditors.recorded() == [card.id]
    assert await auditors.in_flight() == 0
    assert await auditors.lookups() == {}


async def test_alert_post_refused_403_marks_the_channel_inactive_as_an_incident_card_does(
    auditors: Auditors,
) -> None:
    """Teams refuses the post with 403 (the bot was removed from the auditors' channel): no
    card, nothing left in flight, the channel marked inactive and the job done, not set
    aside, as for an incident card."""
    auditors.connector.add_fault(Fault(status=403, method="POST", path="/activities"))
    await auditors.edit()
    await auditors.job_is(outbox.DONE, *outbox.DLQ)
    assert auditors.alerts() == []
    assert [p.status for p in auditors.alert_posts()] == [403]
    assert await auditors.in_flight() == 0
    conversation = await auditors.store.conversation(AUDITORS)
    assert conversation is not None and not conversation.active
    assert await outbox.list_jobs(auditors.store, outbox.DLQ, limit=10) == []
    assert await auditors.recorded() == [None]


async def test_alert_posted_once_carrying_its_marker_and_recorded(auditors: Auditors) -> None:
    """The ordinary path: one post, answered; the card carries its post's marker, and the
    alert records the card's id with nothing left in flight."""
    await auditors.edit()
    await auditors.job_is(outbox.DONE)
    [card] = auditors.alerts()
    assert _marker(card) is not None
    assert [p.status for p in auditors.alert_posts()] == [201]
    assert await auditors.recorded() == [card.id]
    assert await auditors.in_flight() == 0
