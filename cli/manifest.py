"""``python app.py manifest …``: the Teams app package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from cli.common import console, settings_or_exit
from manifest import DEFAULT_OUT

manifest_cli = typer.Typer(help="The Teams app package: build and validate it.")


def register(cli: typer.Typer) -> None:
    """Add these commands to Warden's command line."""
    cli.add_typer(manifest_cli, name="manifest")


@manifest_cli.command("build")
def manifest_build(
    out: Annotated[Path, typer.Option(help="Where to write the package (a .zip).")] = DEFAULT_OUT,
) -> None:
    """Validate the package and write it: upload the zip in Teams or its admin center."""
    from manifest.build import ManifestError, build_package, render  # icons, schemas

    settings = settings_or_exit()
    try:
        written = build_package(settings, out)
    except ManifestError as exc:
        _refuse(exc.problems)
    console.print(f"[green]✓[/] {escape(str(written))}")
    _summary(render(settings))


@manifest_cli.command("check")
def manifest_check() -> None:
    """Validate the package from the current settings without writing it."""
    from manifest.build import problems, render  # icons, schemas

    settings = settings_or_exit()
    found = problems(settings)
    if found:
        _refuse(found)
    console.print("[green]✓[/] the Teams app package is valid")
    _summary(render(settings))


def _refuse(found: list[str]) -> NoReturn:
    """Print each problem and exit 1 (the settings load, but the package would be refused)."""
    for problem in found:
        console.print(f"[red]✗[/] {escape(problem)}")
    raise typer.Exit(1)


def _summary(manifest: dict[str, Any]) -> None:
    """What an operator checks before uploading: ids, version, domains, what Teams will show."""
    bot = manifest["bots"][0]
    commands = {c["title"] for lists in bot.get("commandLists", []) for c in lists["commands"]}
    extension = manifest.get("composeExtensions", [{}])[0]
    handlers = extension.get("messageHandlers", [])
    unfurled = [d for handler in handlers for d in handler["value"].get("domains", [])]
    console.print(f"  app and bot id  {manifest['id']}")
    console.print(f"  version         {manifest['version']}")
    console.print(f"  SSO resource    {manifest.get('webApplicationInfo', {}).get('resource')}")
    console.print(f"  valid domains   {', '.join(manifest.get('validDomains', []))}")
    console.print(f"  link unfurling  {', '.join(unfurled) or 'off (no ServiceNow instance)'}")
    console.print(f"  commands        {len(commands)} in {', '.join(bot['scopes'])}")
