"""Warden's own API against its OpenAPI document: schemathesis finds no 5xx and no stray answer.

The Warden under test serves every webhook it has (Sentinel, budgets, ServiceNow and JSM, the
last two connected to their sandboxes), so each is fuzzed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from core.signing import sign
from sandbox.jsm import JsmSandbox, run_jsm_sandbox
from sandbox.sentinel_samples import sample_incident
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox
from tests.support import SECRET
from web.openapi import openapi_document

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_dict(openapi_document())
BUDGET_TOKEN = "budget-token-" + "c" * 24
JIRA_SECRET = "jira-admin-webhook-secret"


@contextlib.contextmanager
def _itsm_sandboxes() -> Iterator[tuple[ServiceNowSandbox, JsmSandbox]]:
    """The ServiceNow and JSM sandboxes, served by an event loop in a thread of their own
    (these tests are synchronous; Warden runs in a subprocess)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    async def enter() -> tuple[ServiceNowSandbox, JsmSandbox]:
        snow = await stack.enter_async_context(run_servicenow_sandbox())
        return snow, await stack.enter_async_context(run_jsm_sandbox())

    try:
        yield asyncio.run_coroutine_threadsafe(enter(), loop).result(timeout=30)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        loop.close()


@pytest.fixture(scope="module")
def warden_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live Warden (sandbox mode, SQLite, every webhook on) in a subprocess on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with _itsm_sandboxes() as (snow, jsm):
        env = {
            **os.environ,
            "WARDEN_VAR_DIR": str(tmp_path_factory.mktemp("var")),
            "WARDEN_PORT": str(port),
            "WARDEN_SENTINEL_WEBHOOK_SECRETS": SECRET,
            "WARDEN_BUDGETS__WEBHOOK_TOKENS": BUDGET_TOKEN,
            "WARDEN_BUDGETS__OPERATORS_CHANNEL": "19:operators@thread.tacv2",
            "WARDEN_SERVICENOW__INSTANCE_URL": snow.url,
            "WARDEN_SERVICENOW__USERNAME": snow.username,
            "WARDEN_SERVICENOW__PASSWORD": snow.password,
            "WARDEN_SERVICENOW__WEBHOOK_SECRETS": SECRET,
            "WARDEN_JSM__BASE_URL": jsm.url,
            "WARDEN_JSM__EMAIL": jsm.email,
            "WARDEN_JSM__API_TOKEN": jsm.api_token,
            "WARDEN_JSM__WEBHOOK_SECRETS": JIRA_SECRET,
        }
        env.pop("WARDEN_DATABASE_URL", None)
        yield from _serve(env, port)


def _serve(env: dict[str, str], port: int) -> Iterator[str]:
    """Run ``app.py serve`` with ``env`` until the module's tests are done."""
    proc = subprocess.Popen(
        [sys.executable, "app.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Warden exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("Warden did not become ready")


def test_openapi_served_document_matches_builder(warden_url: str) -> None:
    """GET /openapi.json serves the document the tests use."""
    assert httpx.get(f"{warden_url}/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_every_operation_conforms(case: OpenApiCase, warden_url: str) -> None:
    """Generated requests never get a 5xx and every answer matches the document."""
    case.call_and_validate(base_url=warden_url)


def test_openapi_signed_webhook_answers_conform(warden_url: str) -> None:
    """The answers only a signed request can reach (202, 400) also match the document."""
    operation = schema["/api/webhooks/sentinel"]["POST"]
    for body, status in ((sample_incident(), 202), ({"properties": {}}, 400)):
        payload = json.dumps(body).encode()
        headers = {**sign(SECRET, payload), "content-type": "application/json"}
        response = requests.post(
            f"{warden_url}/api/webhooks/sentinel", data=payload, headers=headers
        )
        assert response.status_code == status
        operation.validate_response(response)


def test_openapi_budget_webhook_answers_conform(warden_url: str) -> None:
    """The answers only the right token can reach (202 for both schemas, a resend, 400)
    also match the document."""
    operation = schema["/api/webhooks/budgets"]["POST"]
    budget: dict[str, Any] = {
        "schemaId": "AIP Budget Notification",
        "data": {
            "SubscriptionId": "11111111-2222-3333-4444-555555555555",
            "ResourceGroup": "",
            "SpendingAmount": "1050.25",
            "BudgetStartDate": "2026-11-01",
            "Budget": "1000",
            "Unit": "EUR",
            "BudgetName": "prod-monthly",
            "NotificationThresholdAmount": "800",
        },
    }
    common: dict[str, Any] = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitoringService": "CostAlerts"},
            "alertContext": {
                "AlertCategory": "budgets",
                "AlertData": {
                    "Scope": "/subscriptions/11111111-2222-3333-4444-555555555555/",
                    "ThresholdType": "Forecasted",
                    "BudgetThreshold": "$50.00",
                    "NotificationThresholdAmount": "$50.00",
                    "BudgetName": "forecast",
                    "BudgetStartDate": "2026-11-01",
                    "SpentAmount": "$9.99",
                    "ForecastedTotalForPeriod": "$61.10",
                },
            },
        },
    }
    url = f"{warden_url}/api/webhooks/budgets?token={BUDGET_TOKEN}"
    for body, status in ((budget, 202), (budget, 202), (common, 202), ({"data": {}}, 400)):
        response = requests.post(url, json=body)
        assert response.status_code == status, response.text
        operation.validate_response(response)
