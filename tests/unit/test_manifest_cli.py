"""Specification of `manifest build` and `manifest check` on the command line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from cli.common import console

APP_ID = "9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f"
runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A complete package configuration in the environment, run from an empty directory."""
    monkeypatch.setattr(console, "_width", 250)  # undone to unset, not to 80
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("WARDEN_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("WARDEN_SERVICENOW__INSTANCE_URL", raising=False)
    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    monkeypatch.setenv("WARDEN_MANIFEST__PUBLIC_HOST", "warden.contoso.com")
    monkeypatch.setenv("WARDEN_MANIFEST__WEBSITE_URL", "https://contoso.com/warden")
    return tmp_path


def test_manifest_build_out_writes_zip_and_summary(workdir: Path) -> None:
    """`manifest build --out` exits 0, writes the package there and prints what it holds."""
    out = workdir / "pkg" / "warden-test.zip"
    result = runner.invoke(cli, ["manifest", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("manifest.json"))["bots"][0]["botId"] == APP_ID
    assert str(out) in result.output
    assert APP_ID in result.output and "warden.contoso.com" in result.output
    assert "10 in personal, team, groupChat" in result.output


def test_manifest_build_without_app_id_exits_1_with_reason(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MICROSOFT_APP_ID the build prints the fix, exits 1 and writes nothing."""
    monkeypatch.delenv("MICROSOFT_APP_ID")
    out = workdir / "warden.zip"
    result = runner.invoke(cli, ["manifest", "build", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "✗ MICROSOFT_APP_ID: not set; set it to the bot's Entra app id" in result.output
    assert not out.exists()


def test_manifest_check_valid_prints_summary_writes_nothing(workdir: Path) -> None:
    """`manifest check` validates only: exit 0, the summary, no package anywhere."""
    result = runner.invoke(cli, ["manifest", "check"])
    assert result.exit_code == 0, result.output
    assert "the Teams app package is valid" in result.output
    assert f"api://warden.contoso.com/{APP_ID}" in result.output
    assert list(workdir.rglob("*.zip")) == []


def test_manifest_check_each_problem_listed(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every missing setting is listed on its own ✗ line, exit 1."""
    monkeypatch.delenv("WARDEN_MANIFEST__PUBLIC_HOST")
    monkeypatch.delenv("WARDEN_MANIFEST__WEBSITE_URL")
    result = runner.invoke(cli, ["manifest", "check"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert [line.split(":")[0] for line in lines] == [
        "✗ WARDEN_MANIFEST__PUBLIC_HOST",
        "✗ WARDEN_MANIFEST__WEBSITE_URL",
    ]


def test_manifest_build_bad_setting_exits_2(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed setting stops the command like any other, naming the variable (exit 2)."""
    monkeypatch.setenv("WARDEN_MANIFEST__VERSION", "1.0")
    result = runner.invoke(cli, ["manifest", "build", "--out", str(workdir / "w.zip")])
    assert result.exit_code == 2, result.output
    assert "WARDEN_MANIFEST__VERSION" in result.output
