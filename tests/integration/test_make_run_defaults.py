"""What ``make run`` (``python app.py serve --playground``, sandbox mode) sets up for evidence
without any configuration: the example requirement catalog, and a sandbox SharePoint site
provisioned at start, so evidence requests, filing and the audit log work in the Playground.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from app import CATALOG, EXAMPLE_CATALOG, create_app
from core.catalog import load_catalog
from sandbox.playground import PACKAGE, REPO_ROOT
from tests.e2e.evidence_support import make_run, make_run_settings
from tests.support import make_settings

LISTS = ("Evidence", "Evidence Requests", "Audit Log")


@pytest.fixture
def playground_installed() -> None:
    """Skip unless the Agents Playground can start (``make run`` starts it)."""
    if shutil.which("node") is None or not (REPO_ROOT / "node_modules" / PACKAGE).is_dir():
        pytest.skip(f"node or {PACKAGE} (npm ci) is missing: make run's Playground cannot start")


def test_create_app_playground_without_catalog_uses_example(
    tmp_path: Path, sqlite_url: str
) -> None:
    """With ``--playground`` and no WARDEN_REQUIREMENTS_FILE the example catalog is loaded."""
    app = create_app(make_run_settings(tmp_path, sqlite_url), playground=True)
    example = [r.id for r in load_catalog(EXAMPLE_CATALOG)]
    assert [r.id for r in app[CATALOG]] == example
    assert "ISO27001-A.8.5-MFA-ADMINS" in example


def test_create_app_without_playground_has_no_catalog(tmp_path: Path, sqlite_url: str) -> None:
    """Outside ``make run`` nothing is assumed: no catalog, evidence requests stay off."""
    app = create_app(make_settings(tmp_path, sqlite_url))
    assert CATALOG not in app


def test_create_app_playground_keeps_configured_catalog(tmp_path: Path, sqlite_url: str) -> None:
    """A configured catalog wins over the example."""
    mine = tmp_path / "catalog.yaml"
    text = EXAMPLE_CATALOG.read_text(encoding="utf-8")
    mine.write_text(text.split("\n  - id: CIS-AZ-3.1")[0] + "\n", encoding="utf-8")
    settings = make_run_settings(tmp_path, sqlite_url).model_copy(
        update={"requirements_file": mine}
    )
    app = create_app(settings, playground=True)
    assert [r.id for r in app[CATALOG]] == ["ISO27001-A.8.5-MFA-ADMINS"]


def test_catalog_check_accepts_the_example(tmp_path: Path) -> None:
    """``python app.py catalog check`` reads the catalog ``make run`` uses: all valid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(WARDEN_VAR_DIR=str(tmp_path), WARDEN_MODE="sandbox", COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "app.py", "catalog", "check", str(EXAMPLE_CATALOG)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 requirement(s)" in done.stdout and "valid" in done.stdout


@pytest.mark.usefixtures("playground_installed")
async def test_make_run_readyz_sharepoint_on_and_site_provisioned_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``/readyz`` shows SharePoint on; the sandbox site has its library and lists, and a
    second start (same ``var/``) provisions nothing twice."""
    settings = make_run_settings(tmp_path, sqlite_url)
    for _start in range(2):
        async with make_run(settings) as running:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{running.warden_url}/readyz") as answer,
            ):
                body = await answer.json()
            state = await running.sharepoint_state()
        connectors = body["checks"]["connectors"]
        assert connectors["sharepoint"]["state"] == "on"
        assert connectors["sentinel"]["state"] == "on"
        [site] = state["sites"]
        assert site["path"] == "sites/Compliance"
        names = Counter(x["display_name"] for x in site["lists"])
        assert all(names[name] == 1 for name in LISTS), names
