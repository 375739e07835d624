"""Mutual TLS: connectors present a client certificate to a server that requires one.

The server (``sandbox.mtls``) shares the ARM sandbox's CA, sends real TLS alerts and
refuses a handshake without a certificate that CA issued.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.http import RetryPolicy, client_tls, resilient_client
from connectors.ssrf import SsrfPolicy, fetch, resilient_factory
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.tls import ClientCertificate
from sandbox.arm import DEFAULT_SCOPE, ArmSandbox
from sandbox.arm_tls import ClientCertFiles, TlsFiles, issue_client_cert, make_tls_files
from sandbox.mtls import MtlsServer, run_mtls_server
from tests.integration.conftest import WardenFactory

POLICY = RetryPolicy(attempts=4, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0)


@pytest.fixture
def ca(arm: ArmSandbox) -> TlsFiles:
    """The ARM sandbox's CA files."""
    assert arm.tls is not None
    return arm.tls


@pytest.fixture
async def server(ca: TlsFiles) -> AsyncIterator[MtlsServer]:
    """An HTTPS server that requires a client certificate from the CA."""
    async with run_mtls_server(ca) as running:
        yield running


def _certificate(files: ClientCertFiles, password: str = "") -> ClientCertificate:
    return ClientCertificate.model_validate(
        {"cert_file": files.cert_path, "key_file": files.key_path, "key_password": password}
    )


async def _get(url: str, ca: TlsFiles, cert: ClientCertificate | None) -> int:
    async with resilient_client(
        breakers=Breakers(), policy=POLICY, verify=ca.client_context(), client_cert=cert
    ) as client:
        return (await client.get(url)).status_code


async def test_mtls_with_client_cert_call_succeeds(
    server: MtlsServer, ca: TlsFiles, tmp_path: Path
) -> None:
    """With a certificate the CA issued (key under a password), the call succeeds."""
    files = issue_client_cert(ca, tmp_path, "warden-arm", password="key password")
    assert await _get(f"{server.url}/ping", ca, _certificate(files, "key password")) == 200
    assert server.clients == ["warden-arm"]


async def test_mtls_without_client_cert_fails_once_not_retried(
    server: MtlsServer, ca: TlsFiles
) -> None:
    """Without a certificate the handshake is refused: FAIL at once, the reason named."""
    with pytest.raises(DeliveryError) as caught:
        await _get(f"{server.url}/ping", ca, None)
    assert caught.value.outcome is Outcome.FAIL
    assert "TLS refused (TLSV13_ALERT_CERTIFICATE_REQUIRED) after 1 attempt(s)" in str(caught.value)
    assert len(server.refused) == 1 and server.requests == []


async def test_mtls_wrong_client_cert_fails_not_retried(
    server: MtlsServer, ca: TlsFiles, tmp_path: Path
) -> None:
    """A certificate from another CA is refused too, without retries."""
    stranger = issue_client_cert(make_tls_files(tmp_path / "other-ca"), tmp_path / "other")
    with pytest.raises(DeliveryError) as caught:
        await _get(f"{server.url}/ping", ca, _certificate(stranger))
    assert caught.value.outcome is Outcome.FAIL
    assert "TLS refused (TLSV1_ALERT_UNKNOWN_CA)" in str(caught.value)
    assert server.refused == ["CERTIFICATE_VERIFY_FAILED"]


async def test_mtls_ssrf_guard_presents_cert_on_pinned_connection(
    server: MtlsServer, ca: TlsFiles, tmp_path: Path
) -> None:
    """The SSRF guard's pinned connections present the certificate given in its context."""
    files = issue_client_cert(ca, tmp_path, "warden-fetch")
    port = int(server.url.rsplit(":", 1)[1])
    policy = SsrfPolicy(allowed_hosts=("localhost",), allowed_ports=(port,), allow_private=True)

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    context = client_tls(ca.client_context(), _certificate(files))
    assert isinstance(context, ssl.SSLContext)
    body = await fetch(
        f"https://localhost:{port}/evidence",
        policy,
        client_factory=resilient_factory(Breakers(), POLICY),
        resolver=loopback,
        ssl_context=context,
    )
    assert body.status == 200 and server.clients == ["warden-fetch"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_mtls_sentinel_poll_presents_arm_client_cert(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    server: MtlsServer,
    ca: TlsFiles,
    tmp_path: Path,
) -> None:
    """With WARDEN_ARM_CLIENT_CERT__*, Warden's ARM calls carry the certificate."""
    files = issue_client_cert(ca, tmp_path, "warden-sentinel")
    scope = DEFAULT_SCOPE
    await start_warden(
        sentinel_workspaces=f"{scope.subscription}/{scope.resource_group}/{scope.workspace}",
        sentinel_poll_seconds=0.2,
        sentinel_reconcile_enabled=False,
        arm_endpoint=server.url,
        arm_ca_bundle=arm.ca_path,
        arm_client_cert=_certificate(files),
        azure_tenant_id=arm.tenant_id,
        azure_client_id=arm.client_id,
        azure_client_secret=arm.client_secret,
        azure_authority_host=arm.authority,
    )
    request_line = await server.wait_for_request()
    assert "/providers/Microsoft.SecurityInsights/incidents" in request_line
    assert server.clients[0] == "warden-sentinel" and server.refused == []
