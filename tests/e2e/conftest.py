"""Fixtures for end-to-end tests: the Agents Playground's npm package and a running Playground."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.playground import PACKAGE, REPO_ROOT, Playground, default_config, start_playground
from sandbox.playground_client import PlaygroundClient

NODE_MODULES = REPO_ROOT / "node_modules"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The Playground's npm package, installed with `npm ci` if missing; skip if impossible."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the Agents Playground needs Node.js 20")
    if not (NODE_MODULES / PACKAGE / "cli.js").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"{NODE_MODULES} lacks {PACKAGE} and npm is not on PATH to install it")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"`npm ci` failed, cannot install {PACKAGE}: {done.stderr[-2000:]}")
    return NODE_MODULES


def unused_endpoint() -> str:
    """A bot endpoint on a local port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/messages"


@pytest.fixture
async def playground(node_modules: Path, tmp_path: Path) -> AsyncIterator[Playground]:
    """A Playground with the default config, pointed at no bot."""
    async with start_playground(
        unused_endpoint(), workdir=tmp_path, config=default_config(), node_modules=node_modules
    ) as pg:
        yield pg


@pytest.fixture
async def client(playground: Playground) -> AsyncIterator[PlaygroundClient]:
    """A client of the running Playground."""
    async with PlaygroundClient(playground.url) as pg_client:
        yield pg_client


@pytest.fixture
async def teams(
    node_modules: Path, tmp_path: Path, warden_url: str
) -> AsyncIterator[tuple[Playground, PlaygroundClient]]:
    """The Playground pointed at Warden (the ``warden_url`` fixture of the module), and a
    client driving it."""
    workdir = tmp_path / "playground"
    workdir.mkdir()
    async with (
        start_playground(
            f"{warden_url}/api/messages",
            workdir=workdir,
            config=default_config(),
            node_modules=node_modules,
        ) as playground,
        PlaygroundClient(playground.url) as client,
    ):
        yield playground, client
