"""The foundation's journey: a signed Sentinel webhook becomes a live card in a channel."""

from __future__ import annotations

from sandbox.connector import Fault
from sandbox.sentinel_samples import updated_incident
from tests.integration.conftest import Warden, WardenFactory, incident
from tests.support import signed


def _card_text(record: object) -> str:
    body = getattr(record, "body")  # noqa: B009 - RequestRecord.body is JSON
    return str(body["attachments"][0]["content"])


async def test_webhook_subscribed_channel_card_posted(warden: Warden) -> None:
    """A subscribed channel receives the incident as one adaptive card with no text."""
    conversation = await warden.subscribed_channel()
    resource = incident(title="Ransomware on FIN-SRV-02", number=4242)
    response = await warden.webhook(resource)
    assert response.status == 202
    assert (await response.json()) == {"incident": resource["name"]}
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert len(posts) == 1
    body = posts[0].body
    assert not body.get("text")
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Ransomware on FIN-SRV-02" in str(attachment["content"])
    assert "4242" in str(attachment["content"])


async def test_webhook_newer_version_updates_same_activity(warden: Warden) -> None:
    """A newer version is a PUT on the card's activity id, never a second post."""
    conversation = await warden.subscribed_channel()
    first = incident(title="Suspicious sign-in")
    await warden.webhook(first)
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    activity_id = posts[0].result_id
    second = updated_incident(first)
    assert (await warden.webhook(second)).status == 202
    updates = await warden.connector.wait_for(
        lambda s: s.updates(conversation, activity_id, successful=True)
    )
    assert "Adele Vance" in _card_text(updates[-1])
    assert "Active" in _card_text(updates[-1])
    assert len(warden.card_posts(conversation)) == 1


async def test_webhook_replayed_id_same_answer_no_new_work(warden: Warden) -> None:
    """The same webhook-id again answers the same and causes no new delivery."""
    conversation = await warden.subscribed_channel()
    resource = incident()
    first = await warden.webhook(resource, msg_id="msg_replay_1")
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    changed = updated_incident(resource)
    again = await warden.webhook(changed, msg_id="msg_replay_1")
    assert again.status == first.status == 202
    assert await again.json() == await first.json()
    assert await warden.jobs() == 1


async def test_webhook_older_version_changes_nothing(warden: Warden) -> None:
    """An older version than the stored one is acknowledged and ignored."""
    conversation = await warden.subscribed_channel()
    first = incident()
    newer = updated_incident(first)
    await warden.webhook(newer)
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert (await warden.webhook(first)).status == 202
    assert await warden.jobs() == 1
    assert "Adele Vance" in _card_text(warden.card_posts(conversation)[0])


async def test_subscription_severity_below_threshold_not_posted(warden: Warden) -> None:
    """A channel subscribed to high incidents gets no medium one, but does get a high one."""
    conversation = await warden.subscribed_channel(level="high")
    await warden.webhook(incident(severity="Medium", title="Medium one"))
    await warden.webhook(incident(severity="High", title="High one"))
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert len(posts) == 1
    assert "High one" in _card_text(posts[0])
    assert await warden.jobs() == 1


async def test_delivery_429_then_ok_delivered_once(warden: Warden) -> None:
    """A throttled post is retried after Retry-After and lands exactly once."""
    conversation = await warden.subscribed_channel()
    warden.connector.add_fault(
        Fault(status=429, retry_after=0.2, times=1, method="POST", path="/activities")
    )
    await warden.webhook(incident())
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert len(posts) == 1
    throttled = [r for r in warden.connector.posts(conversation) if r.status == 429]
    assert len(throttled) == 1


async def test_delivery_connector_down_delivered_after_return(warden: Warden) -> None:
    """While the connector is down the card waits; once it is back the card arrives once."""
    conversation = await warden.subscribed_channel()
    warden.connector.set_down(True)
    await warden.webhook(incident())
    await warden.connector.wait_for(
        lambda s: len([r for r in s.posts(conversation) if r.status == 503]) >= 2
    )
    warden.connector.set_down(False)
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert len(posts) == 1


async def test_restart_with_pending_jobs_delivered_once(start_warden: WardenFactory) -> None:
    """Work accepted before a restart is delivered by the next Warden, exactly once."""
    first = await start_warden()
    conversation = await first.subscribed_channel()
    first.connector.set_down(True)
    await first.webhook(incident(title="Accepted before restart"))
    await first.connector.wait_for(lambda s: [r for r in s.posts(conversation) if r.status == 503])
    await first.client.close()
    first.connector.set_down(False)
    second = await start_warden()
    posts = await second.connector.wait_for(lambda s: second.card_posts(conversation))
    assert len(posts) == 1
    assert "Accepted before restart" in _card_text(posts[0])


async def test_delivery_bot_removed_conversation_inactive(warden: Warden) -> None:
    """A 403 from the connector marks the conversation inactive; nothing is retried there."""
    conversation = await warden.subscribed_channel()
    warden.connector.remove_conversation(conversation)
    await warden.webhook(incident())
    await warden.connector.wait_for(lambda s: [r for r in s.posts(conversation) if r.status == 403])
    warden.connector.restore_conversation(conversation)
    await warden.webhook(incident(title="After removal"))
    other = await warden.subscribed_channel("other")
    await warden.webhook(incident(title="Only for the other channel"))
    await warden.connector.wait_for(lambda s: warden.card_posts(other))
    assert not warden.card_posts(conversation)
    assert len([r for r in warden.connector.posts(conversation) if r.status == 403]) == 1


async def test_delivery_update_502_retried_by_outbox_only(warden: Warden) -> None:
    """A 502 on a card update is retried by the outbox once, never inside the SDK."""
    conversation = await warden.subscribed_channel()
    first = incident()
    await warden.webhook(first)
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    warden.connector.add_fault(Fault(status=502, times=1, method="PUT"))
    await warden.webhook(updated_incident(first))
    activity_id = posts[0].result_id
    await warden.connector.wait_for(lambda s: s.updates(conversation, activity_id, successful=True))
    statuses = [r.status for r in warden.connector.updates(conversation, activity_id)]
    assert statuses == [502, 200]


async def test_delivery_post_502_retried_once_no_double_card(warden: Warden) -> None:
    """A 502 on a card post is retried by the outbox and the card appears exactly once."""
    conversation = await warden.subscribed_channel()
    warden.connector.add_fault(Fault(status=502, times=1, method="POST", path="/activities"))
    await warden.webhook(incident())
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    statuses = [
        r.status
        for r in warden.connector.posts(conversation)
        if r.status != 201 or r.operation == "SendToConversation"
    ]
    assert statuses.count(502) == 1
    assert len(warden.card_posts(conversation)) == 1


async def test_traceparent_webhook_trace_continues_on_card_post(warden: Warden) -> None:
    """The webhook's W3C trace reaches the card post made later from the outbox."""
    conversation = await warden.subscribed_channel()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    body, headers = signed(incident(title="Traced"))
    headers["traceparent"] = f"00-{trace_id}-00f067aa0ba902b7-01"
    response = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert response.status == 202
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    traceparent = posts[0].traceparent or ""
    assert traceparent.split("-")[1] == trace_id
    assert traceparent.split("-")[2] != "00f067aa0ba902b7", "a child span, not the caller's"
