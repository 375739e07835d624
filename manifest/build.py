"""The Teams app package: the manifest filled from settings, validated, zipped with its icons.

``manifest.template.json`` holds what every installation shares; ``{{name}}`` placeholders
take this installation's values. A string that is exactly one placeholder is replaced by the
value whatever its type (the command lists are arrays), and a value of ``None`` removes its
key (no ServiceNow: no link unfurling). The bot's commands come from
:data:`cards.commands.MENU_COMMANDS` and the message extension's command id from
:data:`bot.extensions.LINK_COMMAND`, so the package cannot drift from what the bot answers.

:func:`problems` is the one place that says whether a package would be valid; ``manifest
build``, ``manifest check`` and ``doctor`` all ask it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, Draft6Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from bot.extensions import DIALOG_TITLE, LINK_COMMAND
from cards.commands import COMMANDS, MENU_COMMANDS, MENU_MAX
from core.errors import WardenError
from core.settings import Settings, env_name
from core.settings.manifest import is_host_name
from manifest import DEFAULT_OUT
from manifest.icons import COLOR, ICONS_DIR, OUTLINE, icon_problems

TEMPLATE = Path(__file__).resolve().parent / "manifest.template.json"
SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "teams-app-manifest-1.22.schema.json"

BOT_SCOPES = ("personal", "team", "groupChat")
"""Where Warden can be installed; each gets its own command list, as Teams asks."""

COMMAND_TITLE_MAX = 32
COMMAND_DESCRIPTION_MAX = 128
"""Teams' limits for a command menu entry, stricter than the 1.22 schema's."""

_NO_APP_ID = "00000000-0000-0000-0000-000000000000"
_NO_HOST = "warden.invalid"
"""Stand-ins for missing settings, so the template is still checked when they are missing."""

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_REMOVE = object()
"""What a placeholder whose value is None becomes: its key or item is left out."""
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Every zip entry's timestamp: the same settings always give the same bytes."""


class ManifestError(WardenError):
    """The Teams app package would be invalid; ``problems`` lists every reason."""

    user_message = "The Teams app package is not valid."

    def __init__(self, problems: list[str]) -> None:
        """Carry ``problems``, each naming what to fix (a variable, a JSON path, an icon)."""
        super().__init__("the Teams app package is not valid:\n  " + "\n  ".join(problems))
        self.problems = problems


def render(settings: Settings, *, template: Path = TEMPLATE) -> dict[str, Any]:
    """The manifest of this installation; ``ManifestError`` when a setting it needs is missing.

    The result is not schema-checked here: :func:`problems` does that.
    """
    missing = _settings_problems(settings)
    if missing:
        raise ManifestError(missing)
    return _fill(_load_template(template), _values(settings))


def problems(
    settings: Settings, *, template: Path = TEMPLATE, icons: Path = ICONS_DIR
) -> list[str]:
    """Every reason the package would be refused; an empty list means it is valid.

    Missing or unusable settings name their variable; the manifest's schema errors name
    their JSON path (checked even when settings are missing, with stand-in values);
    icon problems name the icon.
    """
    found = _settings_problems(settings) + _command_problems()
    try:
        document = _fill(_load_template(template), _values(settings))
    except ManifestError as exc:
        found += exc.problems
    else:
        found += _schema_problems(document)
    return found + icon_problems(icons)


def build_package(
    settings: Settings,
    out: Path = DEFAULT_OUT,
    *,
    template: Path = TEMPLATE,
    icons: Path = ICONS_DIR,
) -> Path:
    """Write the package (manifest.json and both icons at the zip's root) to ``out``.

    Raises ``ManifestError`` listing every problem instead of writing an invalid package;
    ``out`` is replaced in one step, so a failed build never leaves half a zip.
    """
    found = problems(settings, template=template, icons=icons)
    if found:
        raise ManifestError(found)
    manifest = json.dumps(render(settings, template=template), indent=2, ensure_ascii=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".zip.tmp")
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            _add(z, "manifest.json", manifest.encode())
            for name in (COLOR, OUTLINE):
                _add(z, name, (icons / name).read_bytes())
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def servicenow_host(settings: Settings) -> str | None:
    """The ServiceNow instance's host name, whose record links Warden unfurls; None when off."""
    url = settings.servicenow.instance_url
    return urlsplit(url).hostname if url else None


def jira_host(settings: Settings) -> str | None:
    """The Jira site's host name people open issues at (``/browse/KEY`` links Warden
    unfurls); None when JSM is off."""
    url = settings.jsm.browse_url if settings.jsm.enabled else ""
    return urlsplit(url).hostname if url else None


def unfurled_hosts(settings: Settings) -> list[str]:
    """The host names whose record links Warden unfurls: ServiceNow's, then Jira's."""
    hosts = [servicenow_host(settings), jira_host(settings)]
    return list(dict.fromkeys(host for host in hosts if host))


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _settings_problems(settings: Settings) -> list[str]:
    """What is missing or unusable in the settings, each naming its variable and the fix."""
    found = []
    app_id = settings.microsoft_app_id
    app_var = env_name(("microsoft_app_id",))
    if not app_id:
        found.append(
            f"{app_var}: not set; set it to the bot's Entra app id (a GUID), the package's "
            "app id and bot id"
        )
    elif not _GUID.fullmatch(app_id):
        found.append(f"{app_var}: {app_id!r} is not a GUID; Teams needs the Entra app id")
    if not settings.manifest.public_host:
        found.append(
            f"{env_name(('manifest', 'public_host'))}: not set; set it to the host name Teams "
            "reaches Warden on (e.g. warden.contoso.com)"
        )
    if not settings.manifest.website_url:
        found.append(
            f"{env_name(('manifest', 'website_url'))}: not set; Teams requires a support page "
            "(https://…) in the package"
        )
    for variable, host in (
        (("servicenow", "instance_url"), servicenow_host(settings)),
        (("jsm", "site_url"), jira_host(settings)),
    ):
        if host is not None and not is_host_name(host):
            found.append(
                f"{env_name(variable)}: {host} is not a domain name; Teams unfurls links of "
                "domains only"
            )
    return found


def _command_problems() -> list[str]:
    """Too many commands for Teams' command menu, or ones too long for it (the schema
    allows longer ones than Teams shows)."""
    found = []
    if len(MENU_COMMANDS) > MENU_MAX:
        found.append(f"{len(MENU_COMMANDS)} commands in the menu; Teams takes {MENU_MAX}")
    for command in COMMANDS:
        if len(command.name) > COMMAND_TITLE_MAX:
            found.append(f"command {command.name!r}: longer than {COMMAND_TITLE_MAX} characters")
        if len(command.summary) > COMMAND_DESCRIPTION_MAX:
            found.append(
                f"command {command.name!r}: summary longer than {COMMAND_DESCRIPTION_MAX} "
                "characters"
            )
    return found


def _values(settings: Settings) -> dict[str, Any]:
    """The placeholders' values; missing settings get stand-ins (reported separately)."""
    manifest = settings.manifest
    app_id = settings.microsoft_app_id
    app_id = app_id if _GUID.fullmatch(app_id) else _NO_APP_ID
    host = manifest.public_host or _NO_HOST
    website = manifest.website_url or f"https://{host}/"
    unfurled = unfurled_hosts(settings)
    domains = [host] + [other for other in unfurled if other != host]
    commands = [{"title": c.name, "description": c.summary} for c in MENU_COMMANDS]
    return {
        "appId": app_id,
        "publicHost": host,
        "version": manifest.version,
        "name": manifest.name,
        "developerName": manifest.developer_name,
        "websiteUrl": website,
        "privacyUrl": manifest.privacy_url or website,
        "termsUrl": manifest.terms_url or website,
        "accentColor": manifest.accent_color,
        "commandLists": [{"scopes": [scope], "commands": commands} for scope in BOT_SCOPES],
        "linkCommand": LINK_COMMAND,
        "linkTitle": DIALOG_TITLE,
        "messageHandlers": (
            [{"type": "link", "value": {"domains": unfurled}}] if unfurled else None
        ),
        "validDomains": domains,
    }


def _load_template(template: Path) -> dict[str, Any]:
    """The template's JSON object, or ``ManifestError`` saying why it cannot be used."""
    try:
        document = json.loads(template.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError([f"template {template}: missing"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"template {template}: unreadable ({exc})"]) from None
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}"
        raise ManifestError([f"template {template}: not JSON at {at}: {exc.msg}"]) from None
    if not isinstance(document, dict):
        raise ManifestError([f"template {template}: not a JSON object"])
    return document


def _fill(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``template`` with its placeholders replaced; ``ManifestError`` naming unknown ones."""
    unknown: list[str] = []
    filled = {k: _fill_node(v, values, f"$.{k}", unknown) for k, v in template.items()}
    if unknown:
        raise ManifestError(unknown)
    return {k: v for k, v in filled.items() if v is not _REMOVE}


def _fill_node(node: Any, values: dict[str, Any], path: str, unknown: list[str]) -> Any:
    if isinstance(node, dict):
        filled = {k: _fill_node(v, values, f"{path}.{k}", unknown) for k, v in node.items()}
        return {k: v for k, v in filled.items() if v is not _REMOVE}
    if isinstance(node, list):
        items = (_fill_node(v, values, f"{path}[{i}]", unknown) for i, v in enumerate(node))
        return [item for item in items if item is not _REMOVE]
    if not isinstance(node, str):
        return node
    whole = _PLACEHOLDER.fullmatch(node)
    if whole and whole[1] in values:
        return _REMOVE if values[whole[1]] is None else values[whole[1]]

    def text(match: re.Match[str]) -> str:
        value = values.get(match[1])
        if isinstance(value, str):
            return value
        unknown.append(f"template {path}: no text placeholder {match[0]}")
        return match[0]

    return _PLACEHOLDER.sub(text, node)


@cache
def _validator() -> Draft4Validator:
    """The 1.22 schema's validator: draft-04, plus the ``const`` keyword the schema uses."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = validators.extend(  # type: ignore[no-untyped-call]
        Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]}
    )
    validator: Draft4Validator = cls(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    return validator


def _schema_problems(document: Any) -> list[str]:
    """Each schema error as ``manifest <JSON path>: <message>``, in document order."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: e.json_path)
    return [_describe(error) for error in errors]


def _describe(error: ValidationError) -> str:
    leaf = best_match(error.context) if error.context else error
    message = leaf.message if len(leaf.message) <= 200 else leaf.message[:199] + "…"
    return f"manifest {leaf.json_path}: {message}"
