"""``python app.py manifest …``: the Teams app package."""

from __future__ import annotations

import typer

manifest_cli = typer.Typer(help="The Teams app package: build and validate it.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(manifest_cli, name="manifest")
