"""What every command shares: the console, settings that exit cleanly, a store per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from core.crypto import UnreadablePayload
from core.errors import SettingsError
from core.settings import Settings, load_settings, payload_cipher
from core.store.store import Store

T = TypeVar("T")
console = Console()


def settings_or_exit() -> Settings:
    """The validated settings, or exit 2 printing what is wrong with them."""
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None


def on_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` against the configured store, opened for this command only."""

    async def run() -> T:
        settings = settings_or_exit()
        store = Store.from_url(settings.effective_database_url, cipher=payload_cipher(settings))
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except UnreadablePayload as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
