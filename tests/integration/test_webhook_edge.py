"""The webhook's refusals: each bad request gets the right status and a problem+json body."""

from __future__ import annotations

import io
import json
import time

from tests.integration.conftest import Warden, incident
from tests.support import OTHER_SECRET, signed


async def _problem(response: object) -> dict[str, object]:
    assert getattr(response, "content_type") == "application/problem+json"  # noqa: B009
    body: dict[str, object] = await response.json()  # type: ignore[attr-defined]
    return body


async def test_webhook_unsigned_401_nothing_stored(warden: Warden) -> None:
    """No signature headers → 401, and no job is created."""
    response = await warden.client.post(
        "/api/webhooks/sentinel", json=incident(), headers={"content-type": "application/json"}
    )
    assert response.status == 401
    assert (await _problem(response))["status"] == 401
    assert await warden.jobs() == 0


async def test_webhook_wrong_secret_401(warden: Warden) -> None:
    """A signature from a secret Warden does not hold → 401."""
    response = await warden.webhook(incident(), secret=OTHER_SECRET)
    assert response.status == 401


async def test_webhook_expired_timestamp_401(warden: Warden) -> None:
    """A signature older than five minutes → 401."""
    response = await warden.webhook(incident(), timestamp=time.time() - 600)
    assert response.status == 401


async def test_webhook_tampered_body_401(warden: Warden) -> None:
    """A body changed after signing → 401."""
    body, headers = signed(incident())
    tampered = body.replace(b'"High"', b'"Low"')
    response = await warden.client.post("/api/webhooks/sentinel", data=tampered, headers=headers)
    assert response.status == 401


async def test_webhook_not_json_400(warden: Warden) -> None:
    """A signed body that is not JSON → 400 problem."""
    from core.signing import sign
    from tests.support import SECRET

    body = b"this is not json"
    headers = {**sign(SECRET, body), "content-type": "application/json"}
    response = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert response.status == 400
    assert (await _problem(response))["title"] == "Not JSON"


async def test_webhook_not_an_incident_400_names_field(warden: Warden) -> None:
    """A signed JSON body missing the severity → 400 naming properties.severity."""
    resource = incident()
    del resource["properties"]["severity"]
    response = await warden.webhook(resource)
    assert response.status == 400
    problem = await _problem(response)
    assert problem["field"] == "properties.severity"
    assert "properties.severity" in str(problem["detail"])


async def test_webhook_wrong_content_type_415(warden: Warden) -> None:
    """A body sent as text/plain → 415."""
    body, headers = signed(incident())
    headers["content-type"] = "text/plain"
    response = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert response.status == 415


async def test_webhook_over_one_mebibyte_413(warden: Warden) -> None:
    """A body over 1 MiB → 413, whatever it contains."""
    resource = incident()
    resource["properties"]["description"] = "x" * (1024 * 1024)
    body = io.BytesIO(json.dumps(resource).encode())
    response = await warden.client.post(
        "/api/webhooks/sentinel", data=body, headers={"content-type": "application/json"}
    )
    assert response.status == 413
    assert await warden.jobs() == 0


async def test_health_and_ready_report_store_and_worker(warden: Warden) -> None:
    """/healthz answers ok; /readyz reports the store current and the worker running."""
    assert (await (await warden.client.get("/healthz")).json()) == {"status": "ok"}
    ready = await warden.client.get("/readyz")
    assert ready.status == 200
    checks = (await ready.json())["checks"]
    assert checks["store"]["current"] is True
    assert checks["worker"]["ok"] is True
