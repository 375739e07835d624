"""Prometheus metrics after a journey: requests, ingest, deliveries, outbox and breakers."""

from __future__ import annotations

import re

from tests.integration.conftest import Warden, incident


def _value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if found == wanted:
            return float(match.group(3))
    return 0.0


async def test_metrics_after_journey_counts_what_happened(warden: Warden) -> None:
    """After a webhook, its replay and a delivery, /metrics shows each of them."""
    conversation = await warden.subscribed_channel()
    resource = incident()
    await warden.webhook(resource, msg_id="msg_metrics")
    await warden.webhook(resource, msg_id="msg_metrics")
    await warden.delivered(1)
    response = await warden.client.get("/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    text = await response.text()
    assert _value(text, "warden_ingested_total", source="sentinel", result="accepted") == 1
    assert _value(text, "warden_ingested_total", source="sentinel", result="duplicate") == 1
    route = "/api/webhooks/sentinel"
    assert _value(text, "warden_http_requests_total", route=route, method="POST", status="202") == 2
    # the welcome, the answer to "subscribe incidents" and the card
    assert _value(text, "warden_outbound_calls_total", service="bot_connector", outcome="ok") == 3
    assert (
        _value(text, "warden_outbox_jobs_finished_total", kind="incident.card", outcome="done") == 1
    )
    assert _value(text, "warden_outbox_depth", status="done") == 1
    assert _value(text, "warden_dlq_depth") == 0
    assert "warden_http_request_seconds_bucket" in text
    assert _value(text, "warden_breaker_state", host=warden.connector.url.rstrip("/")) == 0
    assert conversation
