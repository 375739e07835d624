"""Card actions: answered from the store at once, authorised against the object, strict data."""

from __future__ import annotations

from typing import Any

from cards.verbs import CardVerb
from tests.integration.conftest import Warden, incident
from tests.support import channel_id, invoke_activity


async def _click(warden: Warden, conversation: str, data: dict[str, Any]) -> dict[str, Any]:
    activity = invoke_activity(warden.connector.url, conversation, CardVerb.REFRESH.value, data)
    response = await warden.client.post("/api/messages", json=activity)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    return body


async def test_refresh_where_posted_redraws_card(warden: Warden) -> None:
    """Refresh in the channel that got the card redraws it from the store."""
    conversation = await warden.subscribed_channel()
    resource = incident(title="Refresh me")
    await warden.webhook(resource)
    await warden.delivered(1)
    body = await _click(warden, conversation, {"incident": resource["id"].lower()})
    assert "Refresh me" in str(body["value"])


async def test_refresh_from_other_conversation_refused(warden: Warden) -> None:
    """A captured Refresh payload replayed from another conversation reveals nothing."""
    await warden.subscribed_channel()
    resource = incident(title="Secret incident")
    await warden.webhook(resource)
    await warden.delivered(1)
    other = channel_id("elsewhere")
    await warden.install(other)
    body = await _click(warden, other, {"incident": resource["id"].lower()})
    assert "Secret incident" not in str(body["value"])
    assert "Not available here" in str(body["value"])


async def test_refresh_unknown_field_refused(warden: Warden) -> None:
    """Action data with a field the verb does not take is refused (no mass assignment)."""
    conversation = await warden.subscribed_channel()
    resource = incident()
    await warden.webhook(resource)
    await warden.delivered(1)
    data = {"incident": resource["id"].lower(), "owner": "mallory@contoso.com"}
    body = await _click(warden, conversation, data)
    assert "unexpected" in str(body["value"])
