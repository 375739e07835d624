"""``WARDEN_SHAREPOINT_SITE``: validated at boot, parsed into a Graph site address."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import load_settings
from graph.sharepoint import SitePath


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WARDEN_SHAREPOINT_SITE", raising=False)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))


def test_settings_sharepoint_site_unset_is_none() -> None:
    """Without the variable there is no evidence site (provisioning refuses to run)."""
    assert load_settings().sharepoint_site is None


def test_settings_sharepoint_site_host_and_path_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """``host:/sites/Name`` is accepted as written (surrounding spaces dropped)."""
    monkeypatch.setenv("WARDEN_SHAREPOINT_SITE", " contoso.sharepoint.com:/sites/Compliance ")
    assert load_settings().sharepoint_site == "contoso.sharepoint.com:/sites/Compliance"


@pytest.mark.parametrize(
    "value",
    [
        "contoso.sharepoint.com",
        "contoso.sharepoint.com/sites/Compliance",
        "https://contoso.sharepoint.com:/sites/Compliance",
        "contoso.sharepoint.com:/sites/",
        "contoso.sharepoint.com:/Shared Documents/x",
        "contoso:/sites/Compliance",
    ],
)
def test_settings_sharepoint_site_bad_format_names_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Anything but ``host:/sites/Name`` stops start-up naming WARDEN_SHAREPOINT_SITE."""
    monkeypatch.setenv("WARDEN_SHAREPOINT_SITE", value)
    with pytest.raises(SettingsError, match="WARDEN_SHAREPOINT_SITE"):
        load_settings()


def test_site_path_parse_gives_graph_site_key() -> None:
    """The parsed site addresses Graph as ``host:/sites/Name:`` (host lower-cased)."""
    site = SitePath.parse("Contoso.SharePoint.com:/teams/SecOps/Evidence")
    assert site == SitePath("contoso.sharepoint.com", "teams/SecOps/Evidence")
    assert site.site_key == "contoso.sharepoint.com:/teams/SecOps/Evidence:"
    assert str(site) == "contoso.sharepoint.com:/teams/SecOps/Evidence"
    with pytest.raises(ValueError, match="host:/sites/Name"):
        SitePath.parse("contoso.sharepoint.com")
