"""Specification of the Teams app package: filled from settings, valid, refused when broken."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft6Validator, validators
from PIL import Image
from pydantic import ValidationError

from bot.extensions import LINK_COMMAND
from cards.commands import MENU_COMMANDS
from core.settings import Settings
from core.settings.jsm import JsmSettings
from core.settings.manifest import ManifestSettings
from core.settings.servicenow import ServiceNowSettings
from manifest import icons
from manifest.build import TEMPLATE, ManifestError, build_package, problems, render

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "contracts" / "teams-app-manifest-1.22.schema.json"
APP_ID = "9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f"
HOST = "warden.contoso.com"
SNOW_HOST = "contoso.service-now.com"


def _settings(**changes: Any) -> Settings:
    """A production-like installation: app id, public host, support page, ServiceNow."""
    values: dict[str, Any] = {
        "microsoft_app_id": APP_ID,
        "manifest": ManifestSettings.model_validate(
            {"public_host": HOST, "website_url": "https://contoso.com/warden", "version": "2.3.1"}
        ),
        "servicenow": ServiceNowSettings.model_validate(
            {"instance_url": f"https://{SNOW_HOST}", "username": "warden", "password": "pw"}
        ),
    }
    return Settings(**{**values, **changes})


def _schema_errors(manifest: dict[str, Any]) -> list[str]:
    """The 1.22 schema's errors for ``manifest`` (draft-04 with draft-06's ``const``)."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = validators.extend(  # type: ignore[no-untyped-call]
        Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]}
    )
    return [f"{e.json_path}: {e.message}" for e in cls(schema).iter_errors(manifest)]


def _broken_template(tmp_path: Path, change: Any) -> Path:
    """A copy of the shipped template after ``change(document)``."""
    document = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _icons_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "icons"
    shutil.copytree(icons.ICONS_DIR, directory)
    return directory


def test_build_package_realistic_settings_writes_valid_zip(tmp_path: Path) -> None:
    """The zip holds a manifest the 1.22 schema accepts and both icons at their sizes."""
    out = build_package(_settings(), tmp_path / "out" / "warden.zip")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = Image.open(io.BytesIO(archive.read("color.png")))
        outline = Image.open(io.BytesIO(archive.read("outline.png")))
    assert _schema_errors(manifest) == []
    assert manifest["manifestVersion"] == "1.22" and manifest["version"] == "2.3.1"
    assert manifest["$schema"].endswith("/teams/v1.22/MicrosoftTeams.schema.json")
    assert (color.size, outline.size, outline.mode) == ((192, 192), (32, 32), "RGBA")
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_render_bot_uses_app_id_scopes_files_and_every_command() -> None:
    """The bot is the app id, installable everywhere, takes files, lists the menu per scope."""
    manifest = render(_settings())
    (bot,) = manifest["bots"]
    assert manifest["id"] == bot["botId"] == APP_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is True
    assert sorted(scope for lst in bot["commandLists"] for scope in lst["scopes"]) == sorted(
        bot["scopes"]
    )
    expected = [{"title": c.name, "description": c.summary} for c in MENU_COMMANDS]
    assert all(lst["commands"] == expected for lst in bot["commandLists"])


def test_render_message_extension_links_and_unfurls_servicenow() -> None:
    """linkToIncident is a message action with a dialog; ServiceNow links are unfurled."""
    (extension,) = render(_settings())["composeExtensions"]
    (command,) = extension["commands"]
    assert command["id"] == LINK_COMMAND == "linkToIncident"
    assert (command["type"], command["context"], command["fetchTask"]) == (
        "action",
        ["message"],
        True,
    )
    assert extension["botId"] == APP_ID
    assert extension["messageHandlers"] == [{"type": "link", "value": {"domains": [SNOW_HOST]}}]


def test_render_domains_sso_and_rsc_follow_settings() -> None:
    """Valid domains are Warden's host and ServiceNow's; SSO is api://host/app id; RSC read."""
    manifest = render(_settings())
    assert manifest["validDomains"] == [HOST, SNOW_HOST]
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": f"api://{HOST}/{APP_ID}"}
    rsc = manifest["authorization"]["permissions"]["resourceSpecific"]
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in rsc


def test_render_without_servicenow_has_no_link_unfurling() -> None:
    """No ServiceNow instance: no message handler, only Warden's own domain; still valid."""
    settings = _settings(servicenow=ServiceNowSettings.model_validate({}))
    manifest = render(settings)
    assert "messageHandlers" not in manifest["composeExtensions"][0]
    assert manifest["validDomains"] == [HOST]
    assert problems(settings) == [] and _schema_errors(manifest) == []


def test_render_developer_urls_default_to_website() -> None:
    """Privacy and terms fall back to the support page; set ones are used as given."""
    settings = _settings()
    developer = render(settings)["developer"]
    assert developer["privacyUrl"] == developer["termsOfUseUrl"] == "https://contoso.com/warden"
    own = settings.manifest.model_copy(update={"privacy_url": "https://contoso.com/privacy"})
    assert render(_settings(manifest=own))["developer"]["privacyUrl"] == own.privacy_url


def test_problems_realistic_settings_empty() -> None:
    """A complete installation has nothing to fix (what `doctor` reports as healthy)."""
    assert problems(_settings()) == []


def test_build_package_template_missing_property_names_path(tmp_path: Path) -> None:
    """A template without the required developer object is refused, naming it; no zip."""
    template = _broken_template(tmp_path, lambda doc: doc.pop("developer"))
    out = tmp_path / "warden.zip"
    with pytest.raises(ManifestError) as caught:
        build_package(_settings(), out, template=template)
    assert "manifest $: 'developer' is a required property" in caught.value.problems
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []


def test_build_package_template_wrong_type_names_json_path(tmp_path: Path) -> None:
    """A wrong type deep in the template is reported at its JSON path."""

    def change(doc: dict[str, Any]) -> None:
        doc["bots"][0]["supportsFiles"] = "yes"

    template = _broken_template(tmp_path, change)
    with pytest.raises(ManifestError) as caught:
        build_package(_settings(), tmp_path / "warden.zip", template=template)
    assert caught.value.problems == [
        "manifest $.bots[0].supportsFiles: 'yes' is not of type 'boolean'"
    ]


def test_problems_template_wrong_manifest_version_refused(tmp_path: Path) -> None:
    """The schema's const manifestVersion is enforced (draft-04 alone would ignore it)."""
    template = _broken_template(tmp_path, lambda doc: doc.update(manifestVersion="1.21"))
    assert problems(_settings(), template=template) == [
        "manifest $.manifestVersion: '1.22' was expected"
    ]


def test_problems_template_unknown_placeholder_named(tmp_path: Path) -> None:
    """A placeholder the builder does not fill is named with where it is."""
    template = _broken_template(tmp_path, lambda doc: doc["name"].update(short="{{nickname}}"))
    assert problems(_settings(), template=template) == [
        "template $.name.short: no text placeholder {{nickname}}"
    ]


def test_problems_template_not_json_names_line(tmp_path: Path) -> None:
    """A template that is not JSON is reported with the line of the mistake."""
    template = tmp_path / "bad.json"
    template.write_text('{\n  "id": ,\n}', encoding="utf-8")
    (problem,) = problems(_settings(), template=template)
    assert problem.startswith(f"template {template}: not JSON at line 2")


def test_build_package_wrong_size_icon_names_icon(tmp_path: Path) -> None:
    """A colour icon that is not 192×192 is refused, naming the icon and both sizes."""
    directory = _icons_copy(tmp_path)
    Image.new("RGB", (100, 100), (15, 108, 189)).save(directory / "color.png")
    with pytest.raises(ManifestError) as caught:
        build_package(_settings(), tmp_path / "warden.zip", icons=directory)
    assert caught.value.problems == ["icon color.png: is 100×100, Teams needs 192×192"]


def test_problems_outline_icon_coloured_or_opaque_refused(tmp_path: Path) -> None:
    """The outline icon must be white on transparent: colour and a solid fill are named."""
    directory = _icons_copy(tmp_path)
    Image.new("RGBA", (32, 32), (255, 0, 0, 255)).save(directory / "outline.png")
    assert problems(_settings(), icons=directory) == [
        "icon outline.png: has no transparent background",
        "icon outline.png: 1024 visible pixel(s) are not white; Teams needs white on transparent",
    ]
    Image.new("RGB", (32, 32), (255, 255, 255)).save(directory / "outline.png")
    assert problems(_settings(), icons=directory) == [
        "icon outline.png: is RGB, Teams needs RGBA (transparency)"
    ]


def test_problems_missing_icon_named(tmp_path: Path) -> None:
    """A missing icon file is named."""
    directory = _icons_copy(tmp_path)
    (directory / "outline.png").unlink()
    (problem,) = problems(_settings(), icons=directory)
    assert problem.startswith("icon outline.png: missing")


def test_build_package_without_app_id_says_to_set_it(tmp_path: Path) -> None:
    """No MICROSOFT_APP_ID: the build is refused with the fix, and nothing else is blamed."""
    with pytest.raises(ManifestError) as caught:
        build_package(_settings(microsoft_app_id=""), tmp_path / "warden.zip")
    (problem,) = caught.value.problems
    assert problem.startswith("MICROSOFT_APP_ID: not set; set it to the bot's Entra app id")
    with pytest.raises(ManifestError):
        render(_settings(microsoft_app_id=""))


def test_problems_app_id_not_guid_and_no_host_named() -> None:
    """An app id that is not a GUID and a missing host each name their variable."""
    settings = _settings(
        microsoft_app_id="warden-bot", manifest=ManifestSettings.model_validate({})
    )
    assert [p.split(":")[0] for p in problems(settings)] == [
        "MICROSOFT_APP_ID",
        "WARDEN_MANIFEST__PUBLIC_HOST",
        "WARDEN_MANIFEST__WEBSITE_URL",
    ]


def test_problems_servicenow_on_ip_address_refused() -> None:
    """Teams unfurls domains only: an instance reached by IP address is named."""
    snow = ServiceNowSettings.model_validate(
        {"instance_url": "https://10.0.0.7", "username": "u", "password": "p"}
    )
    assert problems(_settings(servicenow=snow)) == [
        "WARDEN_SERVICENOW__INSTANCE_URL: 10.0.0.7 is not a domain name; Teams unfurls links "
        "of domains only"
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("public_host", "https://warden.contoso.com/"),
        ("public_host", "warden.contoso.com:443"),
        ("version", "1.0"),
        ("version", "01.2.3"),
        ("website_url", "http://contoso.com"),
        ("accent_color", "blue"),
        ("name", "W" * 31),
    ],
)
def test_manifest_settings_bad_value_refused(field: str, value: str) -> None:
    """Formats Teams would refuse stop at the settings, like every other setting."""
    with pytest.raises(ValidationError):
        ManifestSettings.model_validate({field: value})


def test_build_package_same_settings_same_bytes(tmp_path: Path) -> None:
    """Two builds from the same settings are identical (a package can be compared by hash)."""
    first = build_package(_settings(), tmp_path / "a.zip").read_bytes()
    assert build_package(_settings(), tmp_path / "b.zip").read_bytes() == first


def test_icons_committed_are_the_drawn_ones(tmp_path: Path) -> None:
    """The committed PNGs are what manifest.icons draws, and pass Teams' icon rules."""
    drawn = tmp_path / "drawn"
    icons.write_icons(drawn)
    for name in (icons.COLOR, icons.OUTLINE):
        committed = Image.open(icons.ICONS_DIR / name)
        fresh = Image.open(drawn / name)
        assert (committed.mode, committed.size) == (fresh.mode, fresh.size)
        assert committed.tobytes() == fresh.tobytes(), f"run `python -m manifest.icons` ({name})"
    assert icons.icon_problems() == []


def test_render_with_jira_unfurls_the_jira_site_too() -> None:
    """JSM configured beside ServiceNow: the Jira site people browse joins the unfurled and
    valid domains; the package stays valid."""
    jira = JsmSettings.model_validate(
        {
            "base_url": "https://api.atlassian.com/ex/jira/cloud-1",
            "site_url": "https://contoso.atlassian.net",
            "email": "warden@contoso.com",
            "api_token": "t",
        }
    )
    settings = _settings(jsm=jira)
    manifest = render(settings)
    handlers = manifest["composeExtensions"][0]["messageHandlers"]
    assert handlers == [
        {"type": "link", "value": {"domains": [SNOW_HOST, "contoso.atlassian.net"]}}
    ]
    assert manifest["validDomains"] == [HOST, SNOW_HOST, "contoso.atlassian.net"]
    assert problems(settings) == [] and _schema_errors(manifest) == []
