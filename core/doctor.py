"""The checks of ``python app.py doctor``: what an operator must know before the first start.

``run_doctor`` loads the settings (a bad one is the *Configuration* check's ✗, naming the
variable, and every other check is then reported as not run), then runs each probe and
returns one ``Check`` per row. A probe says ✓ only after the real call it stands for has
succeeded; a connector that is off or not configured is *skipped* (–) with the reason,
and makes no call at all. The store, the bot identity and the Sentinel webhook secrets are
checked here; the vendor probes (ARM, ServiceNow, Graph, the Teams package) are given by
the command line, which may import them (``core`` imports no vendor code).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import SettingsError, WardenError
from core.logs import SCRUBBER
from core.settings import DEV_SECRET_FILE, Mode, Settings, payload_cipher
from core.settings.identity import AppType
from core.settings.servicenow import whsec_problem
from core.store.store import Store

UPGRADE_FIX = "run `python app.py db upgrade`"


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table: ``ok`` is True (✓), False (✗) or None (skipped, –)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def skipped(self) -> bool:
        """True when the check did not apply (a connector off or not configured)."""
        return self.ok is None


def passed(name: str, detail: str) -> Check:
    """A ✓ row."""
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    """A ✗ row, with what to do about it."""
    return Check(name, False, detail, fix)


def skipped(name: str, why: str) -> Check:
    """A – row, saying why the check does not apply."""
    return Check(name, None, why)


@dataclass(frozen=True)
class Probe:
    """A named group of checks that needs valid settings to run."""

    name: str
    run: Callable[[Settings], Awaitable[list[Check]]]


async def run_doctor(load: Callable[[], Settings], probes: Sequence[Probe]) -> list[Check]:
    """Every check, in order: the configuration first, then each probe (run concurrently).

    A probe that raises is a ✗ of its own (the error's text, scrubbed of secrets), so one
    broken connector never hides the others.
    """
    try:
        settings = load()
    except SettingsError as exc:
        row = failed("Configuration", str(exc), "fix the variables named, then run doctor again")
        return [row] + [skipped(p.name, "not run: the configuration is invalid") for p in probes]
    SCRUBBER.register_settings(settings)
    rows = [passed("Configuration", f"settings valid ({settings.mode.value} mode)")]
    results = await asyncio.gather(*(_guarded(probe, settings) for probe in probes))
    for found in results:
        rows += found
    return rows


async def _guarded(probe: Probe, settings: Settings) -> list[Check]:
    """The probe's rows, or one ✗ naming what went wrong when it raised."""
    try:
        return await probe.run(settings)
    except Exception as exc:  # noqa: BLE001 - any failure is a row, never a crash
        detail = SCRUBBER.scrub(f"{type(exc).__name__}: {exc}")
        return [failed(probe.name, detail, "see the detail; run doctor again after fixing it")]


def summary(checks: Sequence[Check]) -> str:
    """``N checks: X passed, Y failed, Z skipped``."""
    good = sum(1 for c in checks if c.ok is True)
    bad = sum(1 for c in checks if c.ok is False)
    return f"{len(checks)} checks: {good} passed, {bad} failed, {len(checks) - good - bad} skipped"


def database_label(url: str) -> str:
    """The database for people: its kind and where it is, never its credentials."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "an unreadable WARDEN_DATABASE_URL"
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        return f"SQLite {parsed.database or ':memory:'}"
    where = f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")
    return f"{kind} {where}/{parsed.database or ''}"


async def check_store(settings: Settings) -> list[Check]:
    """The store answers and its migrations are current (``Store.check``), then it closes."""
    label = database_label(settings.effective_database_url)
    try:
        store = Store.from_url(settings.effective_database_url, cipher=payload_cipher(settings))
    except (ArgumentError, ImportError, ValueError) as exc:
        return [failed("Store", f"{label}: {type(exc).__name__}", "check WARDEN_DATABASE_URL")]
    try:
        facts = await store.check()
    except (WardenError, OSError) as exc:
        facts = {"reachable": False, "error": type(exc).__name__}
    finally:
        await store.close()
    if not facts.get("reachable"):
        return [
            failed(
                "Store",
                f"{label} does not answer ({facts.get('error')})",
                "check WARDEN_DATABASE_URL and that the database is up",
            )
        ]
    if not facts.get("current"):
        revision = facts.get("revision") or "empty (no migrations applied)"
        detail = f"{label} at revision {revision}, code needs {facts.get('head')}"
        if settings.auto_migrate:  # the truth: behind now, brought up to date at start
            return [passed("Store", f"{detail}; Warden migrates it when it starts")]
        return [failed("Store", detail, UPGRADE_FIX + " (WARDEN_AUTO_MIGRATE is off)")]
    return [passed("Store", f"{label} reachable, migrations current ({facts.get('revision')})")]


async def check_bot_identity(settings: Settings) -> list[Check]:
    """The bot's Entra identity as configured (settings validation enforces production's).

    No Bot Framework token is requested: its login endpoint is fixed in the SDK, so it
    could only be tried against the real tenant; the row says so.
    """
    name = "Bot identity"
    if not settings.microsoft_app_id:
        if settings.mode is Mode.SANDBOX:
            return [skipped(name, "sandbox mode: no MICROSOFT_APP_ID (the Playground needs none)")]
        return [failed(name, "MICROSOFT_APP_ID is not set", "set MICROSOFT_APP_ID")]
    managed = settings.microsoft_app_type is AppType.USER_ASSIGNED_MSI
    secret = bool(settings.microsoft_app_password.get_secret_value())
    credential = "managed identity" if managed else "client secret set" if secret else "none"
    if not managed and not secret:
        return [
            failed(
                name,
                f"app {settings.microsoft_app_id}: no credential",
                "set MICROSOFT_APP_PASSWORD, or MICROSOFT_APP_TYPE=UserAssignedMSI",
            )
        ]
    detail = (
        f"app {settings.microsoft_app_id} ({settings.microsoft_app_type.value}, {credential}); "
        "configuration only, no token requested"
    )
    return [passed(name, detail)]


def webhook_secret_rows(name: str, variable: str, secrets: Sequence[str]) -> list[Check]:
    """One row on a list of ``whsec_`` webhook secrets: each well formed, none missing."""
    if not secrets:
        return [failed(name, f"{variable} is empty", f"set {variable} (whsec_ + base64)")]
    for position, secret in enumerate(secrets, start=1):
        problem = whsec_problem(secret)
        if problem:
            return [failed(name, f"{variable}: secret {position}: {problem}", f"fix {variable}")]
    return [passed(name, f"{len(secrets)} secret(s) in {variable}, well formed")]


def sentinel_webhook_rows(settings: Settings) -> list[Check]:
    """The Sentinel webhook's secrets (in sandbox mode a development one under ``var/``)."""
    variable = "WARDEN_SENTINEL_WEBHOOK_SECRETS"
    rows = webhook_secret_rows("Sentinel webhook", variable, settings.webhook_secrets)
    dev = Path(settings.var_dir) / DEV_SECRET_FILE
    sandbox = rows[0].ok and settings.mode is Mode.SANDBOX and dev.exists()
    if sandbox and dev.read_text(encoding="utf-8").strip() in settings.webhook_secrets:
        return [passed("Sentinel webhook", f"sandbox development secret ({dev})")]
    return rows
