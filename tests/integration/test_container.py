"""The deployment files say what Warden can do: the image's probe, compose and the Bicep.

The HEALTHCHECK is run exactly as the Dockerfile spells it (its ``python`` is this
interpreter) against a real Warden; compose.yaml, .env.example and deploy/azure/main.bicep
may only set variables that are Warden settings, so a misspelt one fails here rather than
being silently ignored in production. Building and running the image needs a Docker engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from core.settings.table import settings_table
from tests.processes import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "deploy" / "azure" / "main.bicep"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cc ")


def settings_variables() -> set[str]:
    """Every environment variable Warden reads (the table of ``python app.py settings``)."""
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", settings_table(), flags=re.M))


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if not keyword:
            continue
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def final_stage() -> dict[str, list[str]]:
    """The last stage's instructions, by instruction."""
    found: dict[str, list[str]] = {}
    for keyword, rest in dockerfile_stages()[-1]:
        found.setdefault(keyword, []).append(rest)
    return found


def healthcheck_command() -> list[str]:
    """The image's HEALTHCHECK command (exec form), its ``python`` this interpreter."""
    (healthcheck,) = final_stage()["HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())
    assert isinstance(command, list) and command[0] == "python"
    return [sys.executable, *command[1:]]


async def probe(port: int) -> int:
    """Run the HEALTHCHECK command as Docker would, for a Warden on ``port``; its exit code."""
    proc = await asyncio.create_subprocess_exec(
        *healthcheck_command(), cwd=ROOT, env={**os.environ, "WARDEN_PORT": str(port)}
    )
    return await asyncio.wait_for(proc.wait(), timeout=30)


async def test_healthcheck_running_warden_passes_stopped_warden_fails(tmp_path: Path) -> None:
    """The image's probe exits 0 while Warden serves and non-zero once it has stopped."""
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_MODE": "sandbox",
        "WARDEN_PORT": str(port),
        "WARDEN_VAR_DIR": str(tmp_path),
    }
    env.pop("WARDEN_DATABASE_URL", None)
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process, not a call
        [sys.executable, "app.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        assert await probe(port) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert await probe(port) != 0


async def test_healthcheck_answer_other_than_ok_fails() -> None:
    """Something answering /healthz with a 503 is not a healthy Warden."""
    app = web.Application()

    async def unhealthy(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=503)

    app.router.add_get("/healthz", unhealthy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await probe(port) == 1
    finally:
        await runner.cleanup()


def test_dockerfile_final_stage_is_slim_non_root_with_healthcheck_and_no_compiler() -> None:
    """The image that runs is slim, runs as a named non-root user, probes itself, builds nothing."""
    stages, final = dockerfile_stages(), final_stage()
    assert len(stages) >= 2, "the build tools belong in a separate builder stage"
    assert "-slim" in final["FROM"][0]
    assert final["USER"] and final["USER"][-1].split(":")[0] not in ("root", "0")
    assert final["EXPOSE"] == ["3978"]
    assert "WARDEN_HOST=0.0.0.0" in " ".join(final["ENV"])
    assert healthcheck_command()[1:] == ["-m", "web.healthcheck"]
    assert json.loads(final["CMD"][0]) == ["python", "app.py", "serve"]
    runs = " ".join(final.get("RUN", []))
    assert not [tool for tool in COMPILERS if tool in runs], runs
    assert all("--from=" not in copy or "/opt/venv" in copy for copy in final["COPY"])


def test_dockerignore_keeps_what_warden_imports() -> None:
    """sandbox/, contracts/ and docs/schemas are read at run time and must stay in the image."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    for needed in ("sandbox", "contracts", "docs", "docs/schemas", "core", "app.py"):
        assert needed not in ignored
    for kept_out in (".venv", "node_modules", "var", "tests", ".git"):
        assert kept_out in ignored


def compose() -> dict[str, Any]:
    """compose.yaml, parsed (YAML merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def test_compose_runs_postgres_migrate_and_two_replicas_after_it() -> None:
    """PostgreSQL, a one-shot migrate, and two replicas that start after it and never migrate."""
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["migrate"]["command"] == ["python", "app.py", "db", "upgrade"]
    replicas = {
        name: spec
        for name, spec in services.items()
        if name not in ("postgres", "migrate") and spec.get("image") == services["migrate"]["image"]
    }
    assert sum(spec.get("deploy", {}).get("replicas", 1) for spec in replicas.values()) >= 2
    for spec in replicas.values():
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert spec["environment"]["WARDEN_AUTO_MIGRATE"] == "false"
        assert spec["environment"]["WARDEN_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert spec["healthcheck"]["test"][1:] == ["python", "-m", "web.healthcheck"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_compose_and_env_example_set_only_warden_settings() -> None:
    """Every variable compose gives Warden, and .env.example's, is a real Warden setting."""
    known, services = settings_variables(), compose()["services"]
    for name in ("migrate", *(n for n in services if n.startswith("warden"))):
        assert set(services[name]["environment"]) - known == set(), name
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "compose.yaml").read_text()))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    keys = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.M))
    assert keys - known - interpolated == set()
    assert interpolated - known - keys == set()


def bicep_app_settings() -> set[str]:
    """The names of the container settings and of the WARDEN-* vault secrets the Bicep sets."""
    text = BICEP.read_text(encoding="utf-8")
    env = set(re.findall(r"name: '([A-Z][A-Z0-9_]*)'\s*\n\s*(?:value|secretRef):", text))
    secrets = re.findall(r"name: '((?:WARDEN|MICROSOFT|AZURE|BOT)-[A-Z0-9-]+)'", text)
    return env | {name.replace("--", "__").replace("-", "_") for name in secrets}


def test_bicep_sets_only_warden_settings() -> None:
    """Each app setting and vault secret the Bicep writes is a real Warden setting."""
    names = bicep_app_settings()
    assert {"WARDEN_MODE", "MICROSOFT_APP_TYPE", "WARDEN_DATABASE_URL"} <= names
    assert {"WARDEN_SENTINEL_WEBHOOK_SECRETS", "WARDEN_ENCRYPTION_KEYS"} <= names
    assert names - settings_variables() == set()


def test_bicep_parameters_example_covers_every_required_parameter() -> None:
    """The example parameters file sets each parameter without a default, and no unknown one."""
    params = dict(
        re.findall(r"^param (\w+) \w+(.*)$", BICEP.read_text(encoding="utf-8"), flags=re.M)
    )
    required = {name for name, rest in params.items() if "=" not in rest}
    example = json.loads((BICEP.parent / "main.parameters.example.json").read_text())
    given = set(example["parameters"])
    assert required and required <= given
    assert given <= set(params)


def docker_engine() -> str | None:
    """None when a Docker engine answers; otherwise why not."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        answer = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if answer.returncode != 0:
        return f"docker info failed: {(answer.stderr or answer.stdout).strip()[-300:]}"
    return None


async def test_image_builds_runs_and_answers_healthz(tmp_path: Path) -> None:
    """The image builds, starts as a non-root sandbox Warden and answers /healthz with 200."""
    reason = docker_engine()
    if reason is not None:
        pytest.skip(f"no Docker engine: {reason}")
    tag, name, port = (
        f"warden-test:{uuid.uuid4().hex[:8]}",
        f"warden-{uuid.uuid4().hex[:8]}",
        free_port(),
    )
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)  # noqa: ASYNC221 - a one-off build
    run = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:3978"]
    subprocess.run([*run, "-e", "WARDEN_MODE=sandbox", tag], check=True, timeout=120)  # noqa: ASYNC221
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)  # a container starting up: nothing to await but its port
            else:
                pytest.fail("the container never answered /healthz")
        user = subprocess.run(  # noqa: ASYNC221
            ["docker", "exec", name, "id", "-u"], capture_output=True, text=True, check=True
        )
        assert user.stdout.strip() != "0"
        probe_run = subprocess.run(["docker", "exec", name, "python", "-m", "web.healthcheck"])  # noqa: ASYNC221
        assert probe_run.returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)  # noqa: ASYNC221
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)  # noqa: ASYNC221
