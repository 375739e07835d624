"""Settings from Azure Key Vault: a pydantic-settings source between the environment and .env.

When ``WARDEN_KEY_VAULT_URL`` is set, Warden lists the vault's enabled secrets and reads
those whose names are Warden's variables spelt the Key Vault way: Key Vault names hold
only letters, digits and dashes and ignore case, so ``_`` becomes ``-`` and the nested
delimiter ``__`` becomes ``--``:

==================================  ==================================
secret                              setting (environment variable)
==================================  ==================================
``MICROSOFT-APP-PASSWORD``          ``MICROSOFT_APP_PASSWORD``
``AZURE-CLIENT-SECRET``             ``AZURE_CLIENT_SECRET``
``WARDEN-SENTINEL-WEBHOOK-SECRETS`` ``WARDEN_SENTINEL_WEBHOOK_SECRETS``
``WARDEN-OUTBOX--MAX-ATTEMPTS``     ``WARDEN_OUTBOX__MAX_ATTEMPTS`` (a nested field)
==================================  ==================================

The mapping is pydantic-settings' ``AzureKeyVaultSettingsSource`` with
``dash_to_underscore=True``; ``secret_name`` spells it for one variable. Secrets with other
names (a vault shared with other applications) are neither read nor used: only names that
start with ``WARDEN-`` or are one of the un-prefixed variables are fetched.

Precedence: init arguments > environment > Key Vault > ``.env`` > defaults. The
environment wins so that an operator can override one secret for one run (or during a
rotation) without touching the vault, as with every other setting; the vault's address and
the identity that reads it come from the sources above it (init arguments, environment).

Identity: the ARM identity (``credential()`` in ``connectors.sentinel.setup``), in its
synchronous form because settings load before the event loop starts:
``ClientSecretCredential`` from ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/
``AZURE_CLIENT_SECRET`` (with ``AZURE_AUTHORITY_HOST``, which then also turns MSAL's
instance discovery off, as the asynchronous credential never does it), else
``DefaultAzureCredential``; ``WARDEN_ARM_CA_BUNDLE`` is trusted for the token endpoint and
the vault. The SDK checks that Key Vault's challenge names a resource of the vault's own
domain (``verify_challenge_resource``); that check is off only for a vault on a loopback
address (the local sandbox), where a token cannot leave the machine.

A vault that cannot be reached, refuses Warden or sends what cannot be read stops start-up
with ``SettingsError`` naming ``WARDEN_KEY_VAULT_URL`` and the reason; nothing is silently
skipped. Every value taken from the vault is registered with the log scrubber at once, so
no log line can show it (keep non-secret settings in the environment).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    AzureKeyVaultSettingsSource,
    BaseSettings,
    PydanticBaseSettingsSource,
)
from pydantic_settings import SettingsError as ParseError

from core.errors import SettingsError
from core.logs import SCRUBBER

if TYPE_CHECKING:
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.identity import ClientSecretCredential, DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

VARIABLE = "WARDEN_KEY_VAULT_URL"

CONNECTION_OPTIONS: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 30}
RETRY_OPTIONS: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.5}
"""Timeouts and retries of the vault client: a start-up waits seconds, not minutes."""

_ACCESS_FIELDS = {
    "url": "key_vault_url",
    "tenant_id": "azure_tenant_id",
    "client_id": "azure_client_id",
    "client_secret": "azure_client_secret",
    "authority_host": "azure_authority_host",
    "ca_bundle": "arm_ca_bundle",
}


def secret_name(variable: str) -> str:
    """The Key Vault secret name of an environment variable (``A_B__C`` → ``A-B--C``)."""
    return variable.replace("_", "-")


@dataclass(frozen=True)
class VaultAccess:
    """Where the vault is and who reads it, from the settings sources above the vault."""

    url: str
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    authority_host: str = ""
    ca_bundle: str = ""

    @classmethod
    def from_state(
        cls, settings_cls: type[BaseSettings], state: Mapping[str, Any]
    ) -> VaultAccess | None:
        """The access described by ``state`` (merged source values), None without a URL."""
        values = {key: _raw(settings_cls, state, name) for key, name in _ACCESS_FIELDS.items()}
        if not values["url"]:
            return None
        values["url"] = check_vault_url(values["url"])
        return cls(**values)

    @property
    def loopback(self) -> bool:
        """True when the vault is on this machine (the sandbox)."""
        host = urlsplit(self.url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def _raw(settings_cls: type[BaseSettings], state: Mapping[str, Any], name: str) -> str:
    """A field's raw value in ``state`` (under its name or an alias), as text; "" if unset."""
    info = settings_cls.model_fields[name]
    keys = [name]
    if isinstance(info.validation_alias, AliasChoices):
        keys += [str(choice) for choice in info.validation_alias.choices]
    for key in keys:
        value = state.get(key)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def check_vault_url(url: str) -> str:
    """``url`` without a trailing slash; ``SettingsError`` unless it is a vault's https URL."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise SettingsError(
            f"{VARIABLE}: use the vault's https URL (https://<vault>.vault.azure.net)"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise SettingsError(f"{VARIABLE}: the vault's URL has no path, query or fragment")
    return f"https://{parts.netloc}"


def make_credential(
    access: VaultAccess, transport: RequestsTransport | None = None
) -> ClientSecretCredential | DefaultAzureCredential:
    """The synchronous form of Warden's ARM identity (see the module docstring)."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    options: dict[str, Any] = {}
    if access.ca_bundle:
        options["connection_verify"] = access.ca_bundle
    if transport is not None:
        options["transport"] = transport
    if access.tenant_id and access.client_id and access.client_secret:
        if access.authority_host:
            options.update(authority=access.authority_host, disable_instance_discovery=True)
        return ClientSecretCredential(
            access.tenant_id, access.client_id, access.client_secret, **options
        )
    return DefaultAzureCredential(**options)


class VaultSecrets(Mapping[str, str | None]):
    """The enabled secrets of a vault that can be Warden settings, keyed by lowercase name.

    Names are listed once; a value is fetched the first time it is asked for.
    """

    def __init__(self, client: SecretClient, settings_cls: type[BaseSettings]) -> None:
        """List the vault's secrets through ``client`` and keep Warden's."""
        wanted = warden_names(settings_cls)
        prefix = secret_name(str(settings_cls.model_config.get("env_prefix", ""))).lower()
        self._client = client
        self._names = {
            item.name.lower(): item.name
            for item in client.list_properties_of_secrets()
            if item.name
            and item.enabled
            and (item.name.lower().startswith(prefix) or item.name.lower() in wanted)
        }
        self._values: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str | None:
        """The value of secret ``key`` (any case); KeyError if Warden does not read it."""
        name = self._names[key.lower()]
        if key.lower() not in self._values:
            self._values[key.lower()] = self._client.get_secret(name).value
        return self._values[key.lower()]

    def __iter__(self) -> Iterator[str]:
        """The lowercase names of the secrets kept."""
        return iter(self._names)

    def __len__(self) -> int:
        """How many secrets were kept."""
        return len(self._names)


def warden_names(settings_cls: type[BaseSettings]) -> frozenset[str]:
    """The lowercase secret names of the variables that have no ``WARDEN_`` prefix."""
    names: set[str] = set()
    for info in settings_cls.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(secret_name(str(c)).lower() for c in info.validation_alias.choices)
    return frozenset(names)


class SecretNames(AzureKeyVaultSettingsSource):
    """pydantic-settings' Key Vault name mapping over the given secrets (see module doc)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        secrets: Mapping[str, str | None],
        *,
        url: str,
        credential: Any,
    ) -> None:
        """Map ``secrets`` (lowercase names) onto ``settings_cls``'s fields."""
        self._secrets = secrets
        super().__init__(settings_cls, url, credential, dash_to_underscore=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        """The secrets given, instead of a new client of pydantic-settings' own."""
        return self._secrets


class KeyVaultSource(PydanticBaseSettingsSource):
    """The settings source that reads Azure Key Vault when ``WARDEN_KEY_VAULT_URL`` is set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` reads the whole vault at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The settings found in the vault (none without a vault URL); ``SettingsError``."""
        access = VaultAccess.from_state(self.settings_cls, self.current_state)
        if access is None:
            return {}
        values = read_vault(self.settings_cls, access)
        for value in _strings(values):
            SCRUBBER.register_secret(value)
        return values


def read_vault(settings_cls: type[BaseSettings], access: VaultAccess) -> dict[str, Any]:
    """Read the vault's Warden secrets as raw setting values; ``SettingsError`` on failure.

    The token requests and the vault calls share one HTTP session, whose connections are
    all closed on the way out, failure or not. The SDK's exception is neither chained nor
    kept as context: no traceback for the operator, and nothing of it (responses,
    connections) outlives the failure.
    """
    import requests
    from azure.core.exceptions import AzureError
    from azure.core.pipeline.transport import RequestsTransport
    from azure.keyvault.secrets import SecretClient

    session = requests.Session()
    options: dict[str, Any] = dict(CONNECTION_OPTIONS, session=session, session_owner=False)
    if access.ca_bundle:
        options["connection_verify"] = access.ca_bundle
    verify_resource = not access.loopback
    try:
        credential = make_credential(access, RequestsTransport(**options))
        client = SecretClient(
            access.url,
            credential,
            transport=RequestsTransport(**options),
            verify_challenge_resource=verify_resource,
            **RETRY_OPTIONS,
        )
        with credential, client:
            secrets = VaultSecrets(client, settings_cls)
            return SecretNames(settings_cls, secrets, url=access.url, credential=credential)()
    except (AzureError, ValueError) as exc:
        failure = describe(exc, access.url)
    finally:
        close_session(session)
    raise SettingsError(f"{VARIABLE}: {failure}")


def close_session(session: requests.Session) -> None:
    """Close ``session`` and every connection in its pools now.

    urllib3 2 leaves pooled connections to the garbage collector, and an SDK error keeps
    its response (and so the pool) alive as long as the error lives.
    """
    from requests.adapters import HTTPAdapter

    for adapter in {id(a): a for a in session.adapters.values()}.values():
        if isinstance(adapter, HTTPAdapter):
            pools = adapter.poolmanager.pools
            for key in pools.keys():  # noqa: SIM118 - the container refuses iteration
                pools[key].close()
    session.close()


def describe(exc: Exception, url: str) -> str:
    """One operator-readable sentence for a failure to read the vault at ``url``."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    if isinstance(exc, ServiceRequestError):
        return f"cannot reach {url}: {root_cause(exc)}"
    response = getattr(exc, "response", None)
    if isinstance(exc, HttpResponseError) and response is not None and _from(response, url):
        return f"{url} refused Warden ({exc.status_code} {exc.reason}): {_first_line(exc)}"
    if isinstance(exc, ClientAuthenticationError):
        return f"Warden's identity got no token for {url}: {_flat(exc.message)}"
    if isinstance(exc, ParseError):
        return f"a secret in {url} is not a valid value ({exc})"
    if isinstance(exc, ValueError):
        return f"{url} cannot be used: {_flat(str(exc))}"
    return f"{url} failed: {type(exc).__name__}: {_flat(str(exc))}"


def root_cause(exc: BaseException) -> str:
    """The innermost reason of a transport failure (refused, TLS, DNS), briefly."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    reason = _flat(str(exc))
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        elif type(current).__name__ in ("SSLError", "SSLCertVerificationError"):
            reason = f"TLS: {getattr(current, 'verify_message', None) or current.args[-1]}"
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "inner_exception", None),
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return reason


def _from(response: Any, url: str) -> bool:
    """True when ``response`` answered a request to the vault (not to the token endpoint)."""
    request = getattr(response, "request", None)
    return str(getattr(request, "url", "")).startswith(url)


def _first_line(exc: Exception) -> str:
    """The service's error message (Key Vault's ``error.message``), first line only."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def _flat(text: str, limit: int = 600) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (nested dicts and lists too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
