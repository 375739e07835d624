"""Contract tests: the Key Vault sandbox speaks the secrets API as azure-keyvault-secrets expects.

The real asynchronous SecretClient and ClientSecretCredential run against it over TLS
(the ARM sandbox's CA and token endpoint); raw httpx calls check the challenge and the
error envelopes the SDK reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from sandbox.arm import ArmSandbox
from sandbox.connector_faults import Fault
from sandbox.keyvault import KeyVaultSandbox, run_keyvault_sandbox

API = {"api-version": "2026-04-01"}


@pytest.fixture
async def vault(arm: ArmSandbox) -> AsyncIterator[KeyVaultSandbox]:
    """An empty Key Vault sandbox."""
    async with run_keyvault_sandbox(arm) as sandbox:
        yield sandbox


@pytest.fixture
async def client(arm: ArmSandbox, vault: KeyVaultSandbox) -> AsyncIterator[SecretClient]:
    """The real SDK client with the sandbox identity (challenge check off: loopback)."""
    credential = ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        arm.client_secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    )
    async with (
        credential,
        SecretClient(
            vault.url,
            credential,
            connection_verify=str(arm.ca_path),
            verify_challenge_resource=False,
        ) as made,
    ):
        yield made


def _http(arm: ArmSandbox) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=arm.ssl_context())


async def test_keyvault_sandbox_set_then_get_latest_and_version(
    client: SecretClient, vault: KeyVaultSandbox
) -> None:
    """PUT makes a version; GET answers the latest or the one named, with its id."""
    first = await client.set_secret("WARDEN-LOG-PEPPER", "one-value", content_type="text/plain")
    await client.set_secret("WARDEN-LOG-PEPPER", "two-value")
    latest = await client.get_secret("warden-log-pepper")
    older = await client.get_secret("WARDEN-LOG-PEPPER", first.properties.version)
    assert (latest.value, older.value) == ("two-value", "one-value")
    assert older.properties.content_type == "text/plain"
    assert latest.id == f"{vault.url}/secrets/WARDEN-LOG-PEPPER/{latest.properties.version}"
    assert latest.properties.enabled and latest.properties.created_on is not None


async def test_keyvault_sandbox_list_pages_follow_next_link(
    client: SecretClient, vault: KeyVaultSandbox
) -> None:
    """A list with maxresults pages through nextLink until it is null; no values listed."""
    for number in range(5):
        vault.set_secret(f"secret-{number}", f"value-{number}")
    names = [item.name async for item in client.list_properties_of_secrets(max_page_size=2)]
    assert names == [f"secret-{number}" for number in range(5)]
    pages = vault.calls("GetSecrets", successful=True)
    assert [page.query.get("maxresults") for page in pages] == ["2", "2", "2"]
    assert all("$skiptoken" in page.query for page in pages[1:])


async def test_keyvault_sandbox_unknown_secret_404_secret_not_found(client: SecretClient) -> None:
    """An unknown name is 404 SecretNotFound, which the SDK raises as ResourceNotFoundError."""
    with pytest.raises(ResourceNotFoundError) as caught:
        await client.get_secret("NOT-THERE")
    assert caught.value.error is not None and caught.value.error.code == "SecretNotFound"


async def test_keyvault_sandbox_disabled_secret_403_secret_disabled(
    client: SecretClient, vault: KeyVaultSandbox
) -> None:
    """A disabled secret is listed (enabled false) but its value is refused (403)."""
    vault.set_secret("OFF", "hidden-value", enabled=False)
    listed = [item async for item in client.list_properties_of_secrets()]
    assert [(item.name, item.enabled) for item in listed] == [("OFF", False)]
    with pytest.raises(HttpResponseError) as caught:
        await client.get_secret("OFF")
    assert caught.value.status_code == 403
    assert "Operation get is not allowed on a disabled secret." in str(caught.value)


async def test_keyvault_sandbox_unauthenticated_gets_challenge(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """No token: 401 with the challenge naming the authority, tenant and vault resource."""
    async with _http(arm) as http:
        answer = await http.get(f"{vault.url}/secrets", params=API)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{arm.authority}/{arm.tenant_id}", '
        'resource="https://vault.azure.net"'
    )
    assert answer.json()["error"]["code"] == "Unauthorized"


async def test_keyvault_sandbox_arm_token_refused_audience(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """A token for ARM is not a token for Key Vault: 401 AKV10022 with the challenge."""
    headers = {"Authorization": f"Bearer {arm.issue_token()}"}
    async with _http(arm) as http:
        answer = await http.get(f"{vault.url}/secrets", params=API, headers=headers)
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert answer.json()["error"]["message"].startswith("AKV10022")


async def test_keyvault_sandbox_unknown_api_version_400(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """An api-version Key Vault does not know is 400 BadParameter."""
    headers = {"Authorization": f"Bearer {arm.issue_token('https://vault.azure.net')}"}
    async with _http(arm) as http:
        answer = await http.get(
            f"{vault.url}/secrets", params={"api-version": "1.0"}, headers=headers
        )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadParameter"


async def test_keyvault_sandbox_other_application_403_forbidden_by_rbac(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """An application without a role on the vault is refused with ForbiddenByRbac."""
    other = arm.register_client("00000000-0000-0000-0000-00000000beef")
    token = arm.issue_token("https://vault.azure.net", client_id=other.client_id)
    async with _http(arm) as http:
        answer = await http.get(
            f"{vault.url}/secrets", params=API, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 403
    assert answer.json()["error"]["innererror"] == {"code": "ForbiddenByRbac"}
    vault.grant(other.client_id, "list")
    async with _http(arm) as http:
        again = await http.get(
            f"{vault.url}/secrets", params=API, headers={"Authorization": f"Bearer {token}"}
        )
    assert again.status_code == 200 and again.json() == {"value": [], "nextLink": None}


async def test_keyvault_sandbox_fault_503_with_retry_after(
    arm: ArmSandbox, vault: KeyVaultSandbox
) -> None:
    """A queued fault answers its status and Retry-After in Key Vault's envelope."""
    vault.add_fault(Fault(status=503, retry_after=2))
    async with _http(arm) as http:
        answer = await http.get(f"{vault.url}/secrets", params=API)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "2")
    assert answer.json()["error"]["code"] == "ServiceUnavailable"
    assert vault.requests[-1].fault == "status"
