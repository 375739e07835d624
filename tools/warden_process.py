"""Warden with the Agents Playground as ``make run`` starts it, in a throwaway directory.

:func:`running_warden` starts ``python app.py serve --playground`` in sandbox mode on free
ports with its own ``WARDEN_VAR_DIR``, waits until Warden, the Playground and the sandbox
Sentinel answer, and stops the whole process group afterwards. The other functions are what
a person does in a second terminal: ``app.py demo incident``, and an administrator's change
in the sandbox directory (adding someone to a reviewer group).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = REPO_ROOT / "docs" / "examples" / "requirements.yaml"
START_SECONDS = 90.0
"""How long Warden, the Playground and the sandboxes may take to answer."""

DELIVERY_SECONDS = 20.0
"""How long a card post may stay in Warden's outbox before the step fails."""


BLOCKING_JOBS = ("incident.", "evidence.ca")
"""Outbox job kinds (as ``outbox list`` shows them) a click waits for: incident cards and
triage writes, evidence cards (not SharePoint filing, which the sandbox may not have)."""


class StepFailed(Exception):
    """A step of the journey did not happen; the message names the step and what was seen."""


@dataclass(frozen=True)
class Warden:
    """A running Warden: its environment (for the command line) and its addresses."""

    env: dict[str, str]
    url: str
    playground_url: str
    arm_url: str
    var_dir: Path
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        """The last lines Warden printed, to explain a failure."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A local TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def warden_env(var_dir: Path) -> dict[str, str]:
    """The environment of a sandbox Warden on free ports, state under ``var_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WARDEN_", "M365_AGENTS_PLAYGROUND_", "TEAMSAPPTESTER_"))
    }
    env.update(
        {
            "WARDEN_MODE": "sandbox",
            "WARDEN_VAR_DIR": str(var_dir),
            "WARDEN_PORT": str(free_port()),
            "WARDEN_PLAYGROUND_PORT": str(free_port()),
            "WARDEN_SANDBOX_ARM_PORT": str(free_port()),
            "WARDEN_SANDBOX_SERVICENOW_PORT": str(free_port()),
            "WARDEN_SANDBOX_GRAPH_PORT": str(free_port()),
            "WARDEN_REQUIREMENTS_FILE": str(REQUIREMENTS_FILE),
            "NO_PROXY": "localhost,127.0.0.1,::1",
        }
    )
    return env


@contextlib.contextmanager
def running_warden() -> Iterator[Warden]:
    """Warden with the Playground and its sandboxes, ready; stopped (group and all) on exit."""
    with tempfile.TemporaryDirectory(prefix="warden-screenshots-") as tmp:
        var_dir = Path(tmp) / "var"
        env = warden_env(var_dir)
        log = Path(tmp) / "warden.log"
        warden = Warden(
            env=env,
            url=f"http://127.0.0.1:{env['WARDEN_PORT']}",
            playground_url=f"http://127.0.0.1:{env['WARDEN_PLAYGROUND_PORT']}",
            arm_url=f"https://127.0.0.1:{env['WARDEN_SANDBOX_ARM_PORT']}",
            var_dir=var_dir,
            log=log,
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "app.py", "serve", "--playground"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_ready(warden, process)
                yield warden
            finally:
                _stop(process)


def _wait_ready(warden: Warden, process: subprocess.Popen[bytes]) -> None:
    """Return once Warden, the Playground and the sandbox Sentinel answer."""
    checks = [
        (f"{warden.url}/readyz", False),
        (f"{warden.playground_url}/_debug/ping", False),
        (f"{warden.arm_url}/_sandbox/mode", True),
    ]
    deadline = time.monotonic() + START_SECONDS
    while checks:
        if process.poll() is not None:
            raise StepFailed(
                f"start Warden: it exited with {process.returncode}\n{warden.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise StepFailed(
                f"start Warden: {checks[0][0]} did not answer within {START_SECONDS:.0f} s\n"
                f"{warden.log_tail()}"
            )
        url, tls = checks[0]
        if _answers(url, warden.var_dir if tls else None):
            checks.pop(0)
        else:
            time.sleep(0.2)


def _answers(url: str, var_dir: Path | None) -> bool:
    """True when ``url`` answers 200 (trusting the sandbox CA under ``var_dir`` if given)."""
    verify: str | bool = True
    if var_dir is not None:
        ca = var_dir / "arm-sandbox" / "ca.pem"
        if not ca.exists():
            return False
        verify = str(ca)
    try:
        return httpx.get(url, timeout=2.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to Warden's process group (Warden then stops the Playground it started),
    SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def cli(warden: Warden, *args: str) -> str:
    """Run ``python app.py <args>`` against ``warden``, as in a second terminal; its output."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and app.py
        [sys.executable, "app.py", *args],
        cwd=REPO_ROOT,
        env=warden.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise StepFailed(f"`app.py {' '.join(args)}` failed: {done.stdout}{done.stderr}")
    return done.stdout


def wait_for_deliveries(warden: Warden) -> None:
    """Return once no incident job and no evidence card job waits in Warden's outbox.

    A card is clickable once Warden has recorded its post, which it does when Teams has
    answered (clicking earlier is answered "not available here", as in Teams), and its
    buttons carry the incident's version, so a click waits for the card to be redrawn.
    """
    deadline = time.monotonic() + DELIVERY_SECONDS
    waiting = ""
    while time.monotonic() < deadline:
        waiting = cli(warden, "outbox", "list", "--status", "pending")
        waiting += cli(warden, "outbox", "list", "--status", "running")
        if not any(kind in waiting for kind in BLOCKING_JOBS):
            return
    raise StepFailed(
        f"deliver the cards: jobs still waited in the outbox after {DELIVERY_SECONDS:.0f} s\n"
        f"{waiting}"
    )


def add_to_groups(warden: Warden, object_id: str, group_ids: list[str]) -> None:
    """Make a person a member of Entra groups in the sandbox directory (an admin's change)."""
    ca = warden.var_dir / "arm-sandbox" / "ca.pem"
    answer = httpx.put(
        f"{warden.arm_url}/_sandbox/users/{object_id}/groups",
        json={"groupIds": group_ids},
        verify=str(ca),
        timeout=10.0,
    )
    if answer.status_code != 200:
        raise StepFailed(f"add the reviewer to the groups: {answer.status_code} {answer.text}")


REPORT = (
    b"Quarterly access review of privileged roles, 2026-Q4\n"
    b"Reviewed: 14 privileged role assignments; removed: 2; reviewer: Security Operations.\n"
)
"""The evidence the screenshot journey links to: a short access-review report."""


@contextlib.contextmanager
def report_page(var_dir: Path) -> Iterator[str]:
    """Serve ``REPORT`` over https on this machine with the sandbox's server certificate (the
    one ``make run`` trusts), so a link handed in is really fetched and filed; yields it."""
    folder = var_dir / "arm-sandbox"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server-key.pem")

    class Report(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(REPORT)))
            self.end_headers()
            self.wfile.write(REPORT)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Report)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/reviews/access-review-2026-q4.txt"
    finally:
        server.shutdown()
        server.server_close()
