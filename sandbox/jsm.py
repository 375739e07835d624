"""Local Jira Service Management site speaking the REST APIs Warden uses.

Routes in ``sandbox.jsm_routes`` (the platform's ``/rest/api/3`` issue, enhanced JQL
search, transitions and comments; the JSM ``/rest/servicedeskapi/request``), JQL in
``sandbox.jsm_jql``, issues and workflows in ``sandbox.jsm_store``, the edge (log, faults,
rate limit, Basic/Bearer auth, Jira's error envelope) in ``sandbox.jsm_http``.

An admin webhook (``set_webhook``) POSTs each issue change signed as Jira does:
``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`` and a delivery id in
``X-Atlassian-Webhook-Identifier``. Use it from tests::

    async with run_jsm_sandbox() as jsm:
        auth = httpx.BasicAuth(jsm.email, jsm.api_token)
        async with httpx.AsyncClient(base_url=jsm.url, auth=auth) as http:
            await http.get("/rest/api/3/issue/SEC-1")
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.itsm_site import ItsmSite
from sandbox.jsm_http import JsmRequest, jsm_middleware
from sandbox.jsm_routes import add_jsm_routes, shaped
from sandbox.jsm_store import Issue, IssueStore, jira_time, parse_jira_time, status_field
from sandbox.servicenow_faults import Failure, RateRule

__all__ = ["JsmRequest", "JsmSandbox", "WebhookDelivery", "run_jsm_sandbox"]


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the site made: the event, the issue key, the answer's status."""

    event: str
    key: str
    identifier: str
    status: int | None


class JsmSandbox(ItsmSite[JsmRequest]):
    """State and behaviour of one fake JSM site: issues, log, faults, webhook.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(
        self,
        *,
        email: str = "warden@example.com",
        api_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        clock: Callable[[], float] = time.time,
        seed: bool = True,
    ) -> None:
        """A site with one account (API token and OAuth client) and example requests."""
        super().__init__("jsm sandbox", clock)
        self.email = email
        self.api_token = api_token or secrets.token_urlsafe(18)
        self.client_id = client_id or secrets.token_hex(16)
        self.client_secret = client_secret or secrets.token_urlsafe(18)
        self.token_salt = secrets.token_hex(4)
        self.store = IssueStore(self.now)
        self.tokens: dict[str, float] = {}
        self.hidden_projects: set[str] = set()
        self.service_desks: dict[str, dict[str, Any]] = {
            "1": {
                "projectKey": "SEC",
                "requestTypes": {"10": "Service Request", "11": "Incident", "12": "Change"},
            }
        }
        self.lose_answers: set[str] = set()
        self.url = ""
        self._hook: tuple[str, str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: list[WebhookDelivery] = []
        self._seed = seed
        if seed:
            seed_examples(self)

    # Issues, as people on the site would change them (not logged).

    def issue(self, key: str) -> dict[str, Any]:
        """A copy of the issue ``key`` with all its fields; KeyError when there is none."""
        found = self.store.get(key)
        if found is None:
            raise KeyError(key)
        return shaped(self, found, None)

    def comments(self, key: str) -> list[dict[str, Any]]:
        """The comments of issue ``key``, oldest first (their ADF bodies as stored)."""
        found = self.store.get(key)
        if found is None:
            raise KeyError(key)
        copied: list[dict[str, Any]] = json.loads(json.dumps(self.store.comments[found["id"]]))
        return copied

    def portal_update(
        self,
        key: str,
        *,
        status: str | None = None,
        priority: str | None = None,
        updated: datetime.datetime | None = None,
    ) -> dict[str, Any]:
        """Change an issue as an agent would (``updated`` may be set back, as a late write
        replicated from elsewhere); the webhook fires. Returns the issue."""
        found = self.store.get(key)
        if found is None:
            raise KeyError(key)
        if status is not None:
            found["fields"]["status"] = status_field(status)
        if priority is not None:
            found["fields"]["priority"] = {"name": priority, "id": "0"}
        self.store.touch(found)
        if updated is not None:
            found["fields"]["updated"] = jira_time(updated)
        self.changed(found, "jira:issue_updated")
        return shaped(self, found, None)

    def updated_at(self, key: str) -> datetime.datetime:
        """When issue ``key`` was last updated."""
        return parse_jira_time(self.issue(key)["fields"]["updated"])

    def customer_request(self, issue: Issue, body: dict[str, Any]) -> dict[str, Any]:
        """The ``CustomerRequest`` answer of ``POST /rest/servicedeskapi/request``."""
        created = parse_jira_time(issue["fields"]["created"])
        date = {
            "iso8601": created.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "jira": issue["fields"]["created"],
            "epochMillis": int(created.timestamp() * 1000),
        }
        status = issue["fields"]["status"]
        return {
            "issueId": issue["id"],
            "issueKey": issue["key"],
            "requestTypeId": str(body["requestTypeId"]),
            "serviceDeskId": str(body["serviceDeskId"]),
            "createdDate": date,
            "currentStatus": {
                "status": status["name"],
                "statusCategory": status["statusCategory"]["key"].upper(),
                "statusDate": date,
            },
            "requestFieldValues": [
                {"fieldId": "summary", "label": "Summary", "value": issue["fields"]["summary"]}
            ],
            "_links": {
                "web": f"{self.url}/servicedesk/customer/portal/{body['serviceDeskId']}/"
                f"{issue['key']}",
                "self": f"{self.url}/rest/servicedeskapi/request/{issue['id']}",
            },
        }

    # Faults and the webhook.

    def fail_next(self, count: int, status: int = 503, *, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` in Jira's envelope."""
        self._failures.append(Failure(count, status, retry_after))

    def rate_limit(self, limit: int, window_seconds: float = 60.0) -> RateRule:
        """Allow ``limit`` REST requests per window; more get 429 with ``Retry-After``."""
        self.rate_rule = RateRule(limit, window_seconds)
        return self.rate_rule

    def clear_faults(self) -> None:
        """Drop queued failures, the rate limit, "down" mode and hidden projects."""
        self._failures.clear()
        self.rate_rule, self.is_down = None, False
        self.hidden_projects.clear()
        self.lose_answers.clear()

    def lose_answer_next(self, path: str) -> None:
        """Do the next request to ``path``, then reset the connection before answering."""
        self.lose_answers.add(path)

    def set_webhook(self, url: str, secret: str) -> None:
        """POST each issue change to ``url``, signed with ``secret`` (X-Hub-Signature)."""
        self._hook = (url, secret)

    def changed(self, issue: Issue, event: str) -> None:
        """An issue changed: deliver the webhook (when one is set) in the background."""
        if self._hook is None:
            return
        body = {
            "timestamp": int(self.clock() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": "issue_generic",
            "issue": shaped(self, issue, None),
        }
        task = asyncio.get_running_loop().create_task(self._deliver(event, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: str, body: dict[str, Any]) -> None:
        assert self._hook is not None
        url, secret = self._hook
        raw = json.dumps(body).encode()
        identifier = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": "sha256="
            + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "X-Atlassian-Webhook-Identifier": identifier,
            "X-Atlassian-Webhook-Flow": "Primary",
        }
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as answer,
            ):
                status = answer.status
        self.deliveries.append(WebhookDelivery(event, body["issue"]["key"], identifier, status))
        for waiter in self._waiters:
            waiter.set()

    async def drain(self) -> None:
        """Wait for the webhook deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def make_app(self) -> web.Application:
        """A new aiohttp application backed by this sandbox's state."""
        app = web.Application(middlewares=[jsm_middleware(self)])
        add_jsm_routes(app, self)
        return app

    def reset(self) -> None:
        """Forget issues, tokens, the log and faults; reseed."""
        self.store.clear()
        self.tokens.clear()
        self._log.clear()
        self.deliveries.clear()
        self.clear_faults()
        if self._seed:
            seed_examples(self)


def seed_examples(sandbox: JsmSandbox) -> None:
    """The example requests of project SEC (and one of OPS, a project Warden may not see)."""
    store = sandbox.store
    store.create(
        "SEC", "Firewall rule change for the payments VLAN", kind="Change", priority="High"
    )
    store.create(
        "SEC",
        "Suspicious sign-ins from an unfamiliar country",
        kind="Incident",
        priority="Highest",
        description="Raised by the SOC on call.",
    )
    store.create("SEC", "Grant read access to the audit share", priority="Low")
    store.create("SEC", "Rotate the VPN gateway certificate", kind="Change", status="In Progress")
    store.create("SEC", "Phishing campaign against finance", kind="Incident", status="Resolved")
    store.create("SEC", "Recurring malware detections on build agents", kind="Problem")
    store.create("OPS", "Disk space on the log collector", kind="Incident")


@contextlib.asynccontextmanager
async def run_jsm_sandbox(
    host: str = "127.0.0.1", port: int = 0, *, sandbox: JsmSandbox | None = None
) -> AsyncIterator[JsmSandbox]:
    """Serve a sandbox for the block; yield it with ``url`` set (no trailing slash).

    Webhook deliveries in flight finish before the block ends.
    """
    served = sandbox or JsmSandbox()
    runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        served.url = f"http://{host}:{runner.addresses[0][1]}"
        yield served
    finally:
        await served.drain()
        await runner.cleanup()
