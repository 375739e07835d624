"""The guides' screenshots: ``python -m tools.screenshots`` walks the journeys in the real
Agents Playground page (headless Chromium) and writes a real picture of each moment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tools.playground_page import chromium_path
from tools.screenshots import SCALE, SHOTS
from tools.warden_process import REPO_ROOT

pytestmark = pytest.mark.e2e

RUN_SECONDS = 180


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium, installed with apt-get when missing; skip only if impossible."""
    found = chromium_path()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and apt-get cannot install it here (not root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [apt, "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = chromium_path()
    if found is None:
        pytest.skip(f"chromium cannot be installed: {done.stderr[-1500:]}")
    return found


@pytest.fixture(scope="module")
def shots(chromium: str, node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory one run of the screenshot tool wrote."""
    out = tmp_path_factory.mktemp("img")
    done = subprocess.run(
        [sys.executable, "-m", "tools.screenshots", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"the screenshot run failed: {done.stderr}"
    listed = {Path(line).name for line in done.stdout.splitlines()}
    assert listed == set(SHOTS), f"the run listed {sorted(listed)}"
    return out


@pytest.mark.parametrize("name", SHOTS)
def test_screenshots_each_journey_writes_a_real_picture(shots: Path, name: str) -> None:
    """Each expected file is a PNG of a card-sized area, full of distinct colours (text,
    buttons, the severity pill), not a blank or uniform page."""
    path = shots / name
    assert path.is_file(), f"{name} was not written"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 400 * SCALE <= width <= 1280 * SCALE, f"{name} is {width} px wide"
        assert height >= 300 * SCALE, f"{name} is only {height} px tall"
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, f"{name} has {len(colours)} colours: blank?"
        spread = ImageStat.Stat(rgb.convert("L")).stddev[0]
        assert spread > 20, f"{name} is nearly uniform (stddev {spread:.1f})"


def test_screenshots_card_grows_as_the_journey_changes_it(shots: Path) -> None:
    """The same incident card, taken after each step: the triage line, then the linked
    change, then the opened close form each add to it, so each picture is taller."""

    def height(name: str) -> int:
        with Image.open(shots / name) as image:
            return image.size[1]

    posted = height("incident-card-playground.png")
    assigned = height("triage-card-playground.png")
    linked = height("servicenow-link-playground.png")
    closing = height("triage-close-playground.png")
    assert posted < assigned < linked < closing
