"""Local ServiceNow instance speaking the Table API of ``contracts/servicenow-table-api.yaml``.

One HTTP server (HTTPS with ``tls=True``, the private CA of ``sandbox.arm_tls``):

* ``/api/now/table/{table}[/{sys_id}]`` (routes in ``sandbox.servicenow_routes``, encoded
  queries in ``sandbox.servicenow_query``, output options in ``sandbox.servicenow_render``);
* ``POST /oauth_token.do`` (client credentials or password grant; Bearer tokens);
* a read-only page at ``/`` and ``/_sandbox/servicenow``.

Use it from tests::

    async with run_servicenow_sandbox() as snow:
        auth = httpx.BasicAuth(snow.username, snow.password)
        async with httpx.AsyncClient(base_url=snow.url, auth=auth) as http:
            await http.get("/api/now/table/change_request", params={"sysparm_limit": 10})

or standalone: ``python -m sandbox.servicenow --port 8090``. See
``docs/dev/servicenow-sandbox.md`` for the business rule's message and the choices made.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.arm_tls import TlsFiles, make_tls_files
from sandbox.itsm_site import ItsmSite
from sandbox.request_log import RequestLog
from sandbox.servicenow_faults import Failure, RateRule
from sandbox.servicenow_http import ServiceNowRequest, servicenow_middleware
from sandbox.servicenow_page import add_page_routes
from sandbox.servicenow_render import Renderer
from sandbox.servicenow_routes import add_table_routes
from sandbox.servicenow_rules import RuleDelivery, RuleRunner
from sandbox.servicenow_schema import answer_problem, request_problem
from sandbox.servicenow_seed import seed_examples
from sandbox.servicenow_store import Record, RecordStore

__all__ = ["RuleDelivery", "ServiceNowRequest", "ServiceNowSandbox", "run_servicenow_sandbox"]


@dataclass(frozen=True)
class Token:
    """An access token the sandbox issued: whom it authenticates, until when (epoch s)."""

    user: str
    expires_at: float


class ServiceNowSandbox(ItsmSite[ServiceNowRequest]):
    """State and behaviour of one fake ServiceNow instance: records, log, faults, rule.

    Not thread-safe: use it from the event loop that serves its app.
    """

    def __init__(
        self,
        *,
        username: str = "warden.integration",
        password: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        page_size: int = 10000,
        clock: Callable[[], float] = time.time,
        seed_examples: bool = True,
        invalid_query_returns_no_rows: bool = False,
    ) -> None:
        """Create an instance with one API account (Basic and OAuth) and example data.

        Secrets default to random values. ``page_size`` is the page without
        ``sysparm_limit`` (the description's default, 10000). ``clock`` (epoch seconds)
        drives timestamps and token expiry; see ``advance_clock``.
        ``invalid_query_returns_no_rows`` is the instance property
        ``glide.invalid_query.returns_no_rows``.
        """
        super().__init__("servicenow sandbox", clock)
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.client_id = client_id or secrets.token_hex(16)
        self.client_secret = client_secret or secrets.token_urlsafe(18)
        self.page_size = page_size
        self.invalid_query_returns_no_rows = invalid_query_returns_no_rows
        self.store = RecordStore(self.now)
        self.renderer = Renderer(self.store)
        self.rules = RuleRunner(self.now, self._wake)
        self.tokens: dict[str, Token] = {}
        self.denied_tables: set[str] = set()
        self.slow_seconds = 0.0
        self.contract_problems: list[str] = []
        self.url = ""
        self.tls: TlsFiles | None = None
        self._seed = seed_examples
        if seed_examples:
            seed_examples_into(self)

    # Tokens and the log.

    def add_token(self, token: str, user: str, lifetime: float) -> None:
        """Accept ``token`` as a Bearer token for ``user`` for ``lifetime`` seconds."""
        self.tokens[token] = Token(user, self.clock() + lifetime)

    def log_request(self, entry: ServiceNowRequest) -> None:
        """Append a request to the log and wake every ``wait_for``."""
        RequestLog.record(self, entry)

    def _wake(self) -> None:
        """Wake every ``wait_for`` (a business-rule delivery finished)."""
        for waiter in self._waiters:
            waiter.set()

    def check_answer(self, operation: str, status: int, body: object) -> None:
        """Note an answer that breaks the contract in ``contract_problems``."""
        problem = answer_problem(operation, status, body)
        if problem is not None:
            self.contract_problems.append(problem)

    def check_request(self, body: object) -> None:
        """Note a write body that breaks ``ChangeRequestWrite`` (the instance still takes it)."""
        problem = request_problem(body)
        if problem is not None:
            self.contract_problems.append(problem)

    # Records, as the system or a person in the UI would change them (not logged).

    def create(self, table: str, fields: Mapping[str, object], *, user: str = "admin") -> Record:
        """Insert a record as the instance would and return a copy; runs the business rule."""
        return dict(self.insert(table, fields, user))

    def insert(self, table: str, fields: Mapping[str, object], user: str) -> Record:
        """Insert a record (KeyError for an unknown table) and run the rule; return it."""
        record = self.store.insert(table, fields, user)
        self.rules.fire(record["sys_class_name"], record, "insert")
        return record

    def update(
        self,
        record: Record,
        fields: Mapping[str, object],
        user: str,
        *,
        suppress_auto_fields: bool = False,
    ) -> bool:
        """Update a stored record; run the rule when something changed; return whether it did."""
        changed = self.store.update(record, fields, user, suppress_auto_fields=suppress_auto_fields)
        if changed:
            self.rules.fire(record["sys_class_name"], record, "update")
        return changed

    def portal_update(
        self, table: str, sys_id: str, fields: Mapping[str, object], *, user: str = "david.loo"
    ) -> Record:
        """Change a record as a person in ServiceNow would; return a copy of it.

        Bumps ``sys_updated_on``/``sys_updated_by``/``sys_mod_count`` and runs the business
        rule (when something changed). KeyError if there is no such record.
        """
        found = self.store.get(table, sys_id)
        if found is None:
            raise KeyError(f"no {table} record {sys_id}")
        self.update(found, fields, user)
        return dict(found)

    def record(self, table: str, sys_id: str) -> Record | None:  # type: ignore[override]
        """Return a copy of a record of ``table`` (or a subclass), or None.

        (The request log's ``record`` is ``log_request`` here.)
        """
        found = self.store.get(table, sys_id)
        return None if found is None else dict(found)

    def find(self, table: str, number: str) -> Record | None:
        """Return a copy of the record of ``table`` with this number, or None."""
        return self.find_by(table, "number", number)

    def find_by(self, table: str, field: str, value: str) -> Record | None:
        """Return a copy of the first record of ``table`` whose ``field`` is ``value``."""
        found = self.store.find(table, field, value)
        return None if found is None else dict(found)

    def records(self, table: str) -> list[Record]:
        """Return copies of every record of ``table`` and its subclasses, oldest first."""
        return [dict(r) for r in self.store.all(table)]

    def work_notes(self, table: str, sys_id: str) -> list[dict[str, str]]:
        """Return a record's work notes, oldest first: value, sys_created_by, sys_created_on.

        KeyError if there is no such record.
        """
        if self.store.get(table, sys_id) is None:
            raise KeyError(f"no {table} record {sys_id}")
        return [
            {k: e[k] for k in ("value", "sys_created_by", "sys_created_on")}
            for e in self.store.journal(sys_id, "work_notes")
        ]

    # Faults, ACLs and the business rule.

    def fail_next(
        self, count: int, status: int = 503, *, retry_after: float | None = None, body: Any = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (default envelope unless ``body``)."""
        self._failures.append(Failure(count, status, retry_after, body))

    def rate_limit(self, limit: int, window_seconds: float = 3600.0) -> RateRule:
        """Allow ``limit`` API requests per window; more get 429 (see ``RateRule``)."""
        self.rate_rule = RateRule(limit, window_seconds)
        return self.rate_rule

    def down(self) -> None:
        """Reset every connection to the API and the token endpoint until ``up``."""
        self.is_down = True

    def up(self) -> None:
        """Leave "down" mode."""
        self.is_down = False

    def slow(self, seconds: float) -> None:
        """Wait ``seconds`` before answering every request (0 stops)."""
        self.slow_seconds = seconds

    def clear_faults(self) -> None:
        """Drop queued failures, the rate limit, slowness, "down" mode and read denials."""
        self._failures.clear()
        self.rate_rule = None
        self.is_down = False
        self.slow_seconds = 0.0
        self.denied_tables.clear()

    def deny_read(self, table: str) -> None:
        """Make GETs on ``table`` answer 403, as for an account an ACL keeps out."""
        self.denied_tables.add(table)

    def set_business_rule(self, url: str, secret: str) -> None:
        """POST each change_request/incident insert and update to ``url``, signed."""
        self.rules.configure(url, secret)

    @property
    def rule_deliveries(self) -> list[RuleDelivery]:
        """Every business-rule delivery attempt so far, in completion order."""
        return list(self.rules.deliveries)

    def make_app(self) -> web.Application:
        """Build a new aiohttp application backed by this sandbox's state."""
        app = web.Application(middlewares=[servicenow_middleware(self)])
        add_table_routes(app, self)
        add_page_routes(app, self.renderer)
        return app

    def reset(self) -> None:
        """Forget records, tokens, the log, faults and clock advances; reseed."""
        self.store.clear()
        self.tokens.clear()
        self._log.clear()
        self.contract_problems.clear()
        self.clear_faults()
        self._offset = 0.0
        if self._seed:
            seed_examples_into(self)


def seed_examples_into(sandbox: ServiceNowSandbox) -> None:
    """Add the example users, groups, CIs, change requests and incidents."""
    seed_examples(sandbox, sandbox.username)


@contextlib.asynccontextmanager
async def run_servicenow_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sandbox: ServiceNowSandbox | None = None,
    tls: bool = False,
    tls_dir: Path | None = None,
) -> AsyncIterator[ServiceNowSandbox]:
    """Serve a sandbox for the block; yield it with ``url`` set (no trailing slash).

    ``port=0`` picks a free port. With ``tls`` a private CA and server certificate are
    written to ``tls_dir`` (a temporary directory unless given); ``sandbox.tls.ca_path``
    is the CA to trust. Business-rule deliveries in flight finish before the block ends.
    """
    served = sandbox or ServiceNowSandbox()
    with contextlib.ExitStack() as stack:
        context = None
        if tls:
            if served.tls is None:
                directory = tls_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
                served.tls = make_tls_files(directory)
            context = served.tls.server_context()
        runner = web.AppRunner(served.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            scheme = "https" if tls else "http"
            url_host = f"[{host}]" if ":" in host else host
            served.url = f"{scheme}://{url_host}:{runner.addresses[0][1]}"
            yield served
        finally:
            await served.rules.drain()
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m sandbox.servicenow`` (see ``sandbox.servicenow_cli``)."""
    from sandbox.servicenow_cli import run

    run(argv)


if __name__ == "__main__":
    main()
