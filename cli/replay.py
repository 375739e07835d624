"""``app.py replay FILE``: re-send recorded inbound traffic to a running Warden.

The recording (``WARDEN_RECORD_DIR``, see ``core.recording``) is sent ``--times`` times, with
the recorded spacing divided by ``--speed``. Webhooks are signed afresh with the running
instance's secret (from the settings) and keep their recorded ``webhook-id``, so a second
delivery is recognised as one; activities need no token in sandbox mode (no app id), and
with an app id the command refuses, since it cannot mint a Bot Framework token. Before and
after each pass the store is tallied (``core.store.tally``) and the differences printed.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, settings_or_exit
from core.recording import Recorded, read_recording, spacing
from core.settings import Settings, payload_cipher
from core.signing import sign
from core.store.store import Store
from core.store.tally import tally, unfinished

Sleep = Callable[[float], Awaitable[None]]
APP_ID_REFUSAL = (
    "Warden has an app id (MICROSOFT_APP_ID), so /api/messages wants a Bot Framework token, "
    "which replay cannot mint: replay activities against a sandbox-mode Warden (no app id)."
)


class ReplayRefused(Exception):
    """The recording cannot be replayed against this Warden; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where and how to send: Warden's URL, the secrets it verifies, the Bot Connector."""

    url: str
    sentinel_secret: str | None = None
    servicenow_secret: str | None = None
    service_url: str | None = None
    """When set, every activity's ``serviceUrl`` is this (the connector Warden answers to)."""
    app_id: str = ""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, url: str | None, service_url: str | None
    ) -> Target:
        """The running instance these settings describe."""
        snow = [s.get_secret_value() for s in settings.servicenow.webhook_secrets]
        return cls(
            url=url or f"http://{settings.host}:{settings.port}",
            sentinel_secret=next(iter(settings.webhook_secrets), None),
            servicenow_secret=next(iter(snow), None),
            service_url=service_url,
            app_id=settings.microsoft_app_id,
        )


@dataclass
class Pass:
    """What one pass sent and what Warden answered."""

    statuses: list[int] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Requests answered 2xx."""
        return sum(1 for status in self.statuses if 200 <= status < 300)


def check(recorded: Sequence[Recorded], target: Target) -> None:
    """``ReplayRefused`` when some recorded request could not be sent to ``target``."""
    kinds = {item.kind for item in recorded}
    if "activity" in kinds and target.app_id:
        raise ReplayRefused(APP_ID_REFUSAL)
    if "sentinel" in kinds and not target.sentinel_secret:
        raise ReplayRefused("no Sentinel webhook secret (WARDEN_SENTINEL_WEBHOOK_SECRETS)")
    if "servicenow" in kinds and not target.servicenow_secret:
        raise ReplayRefused("no ServiceNow webhook secret (WARDEN_SERVICENOW__WEBHOOK_SECRETS)")


def request_of(item: Recorded, target: Target) -> tuple[bytes, dict[str, str]]:
    """The body and headers to send ``item`` with: re-signed, ``serviceUrl`` rewritten."""
    body: Any = item.body
    if item.kind == "activity" and target.service_url and isinstance(body, dict):
        body = {**copy.deepcopy(body), "serviceUrl": target.service_url}
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    secret = target.sentinel_secret if item.kind == "sentinel" else target.servicenow_secret
    if item.kind != "activity" and secret:
        msg_id = item.headers.get("webhook-id") or f"msg_{hashlib.sha256(data).hexdigest()[:32]}"
        headers.update(sign(secret, data, msg_id=msg_id))
    return data, headers


async def replay_once(
    recorded: Sequence[Recorded],
    target: Target,
    client: httpx.AsyncClient,
    *,
    speed: float = float("inf"),
    sleep: Sleep = asyncio.sleep,
    between: Callable[[], Awaitable[object]] | None = None,
) -> Pass:
    """Send every recorded request once, in order, spaced as recorded over ``speed``.

    ``between`` is awaited after each request: waiting there for the work it caused (a
    card's post) keeps the recording's causality, so a click finds its card.
    """
    done = Pass()
    for wait, item in spacing(list(recorded), speed):
        if wait > 0:
            await sleep(wait)
        if between is not None and done.statuses:
            await between()
        body, headers = request_of(item, target)
        response = await client.post(
            f"{target.url.rstrip('/')}{item.path}", content=body, headers=headers
        )
        done.statuses.append(response.status_code)
    return done


async def settle(store: Store, seconds: float, *, every: float = 0.2) -> int:
    """Wait (up to ``seconds``) until the other process's outbox has no job waiting or
    running; the jobs still unfinished then."""
    deadline = time.monotonic() + seconds
    left = await unfinished(store)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(every)  # another process's work: polling its store is all we have
        left = await unfinished(store)
    return left


def parse_speed(text: str) -> float:
    """``10x`` or ``10`` → 10.0; ``max`` → no waiting. ``BadParameter`` otherwise."""
    if text.strip().lower() == "max":
        return float("inf")
    try:
        value = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a speed like 10x") from None
    if value <= 0:
        raise typer.BadParameter("the speed must be above 0")
    return value


def changes_table(tallies: Sequence[dict[str, int]], passes: Sequence[Pass]) -> Table:
    """Rows: what was counted; columns: before, then what each pass added."""
    table = Table("what", "before", *[f"pass {n} added" for n in range(1, len(passes) + 1)])
    names = sorted({name for counts in tallies for name in counts}, key=_row_order)
    for name in names:
        values = [counts.get(name, 0) for counts in tallies]
        deltas = [after - before for before, after in itertools.pairwise(values)]
        table.add_row(name, str(values[0]), *[_delta(d) for d in deltas])
    answers = [f"{p.accepted}/{len(p.statuses)}" for p in passes]
    table.add_row("[dim]requests accepted[/]", "", *answers)
    return table


def _row_order(name: str) -> tuple[bool, str]:
    return name.startswith("jobs "), name


def _delta(value: int) -> str:
    return f"[green]+{value}[/]" if value > 0 else "[dim]0[/]" if value == 0 else str(value)


async def _run(
    file: Path, settings: Settings, target: Target, times: int, speed: float, wait: float
) -> None:
    recorded = read_recording(file)
    check(recorded, target)
    store = Store.from_url(settings.effective_database_url, cipher=payload_cipher(settings))
    tallies, passes = [await tally(store)], []
    try:
        async with httpx.AsyncClient(timeout=30.0) as client:
            for _ in range(times):
                passes.append(
                    await replay_once(
                        recorded, target, client, speed=speed, between=lambda: settle(store, wait)
                    )
                )
                if left := await settle(store, wait):
                    console.print(f"[yellow]{left} job(s) still unfinished after {wait:.0f} s[/]")
                tallies.append(await tally(store))
    finally:
        await store.close()
    console.print(changes_table(tallies, passes))


def replay(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A recording (.jsonl).")
    ],
    times: Annotated[int, typer.Option(min=1, max=100, help="How many passes.")] = 1,
    speed: Annotated[
        str, typer.Option(help="Recorded spacing divided by this: 10x, or max.")
    ] = "max",
    url: Annotated[str | None, typer.Option(help="Warden's URL (default: host and port).")] = None,
    service_url: Annotated[
        str | None, typer.Option(help="The Bot Connector URL to put in every activity.")
    ] = None,
    settle_seconds: Annotated[
        float, typer.Option("--settle", min=0, help="How long to wait for the outbox each pass.")
    ] = 30.0,
) -> None:
    """Re-send a recording to a running Warden and print what each pass changed."""
    settings = settings_or_exit()
    target = Target.from_settings(settings, url=url, service_url=service_url)
    try:
        asyncio.run(_run(file, settings, target, times, parse_speed(speed), settle_seconds))
    except (ReplayRefused, ValueError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        console.print(f"[red]Warden did not answer at {escape(target.url)}: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None


def register(cli: typer.Typer) -> None:
    """Add ``replay`` to Warden's command line."""
    cli.command("replay")(replay)
