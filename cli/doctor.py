"""``python app.py doctor``: check configuration, store, connectors, secrets and manifest."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
