"""The Key Vault secrets REST API of ``sandbox.keyvault``, as azure-keyvault-secrets calls it.

``GET /secrets?api-version=V[&maxresults=N]``   SecretListResult ``{value, nextLink}``; a
                                                page holds at most 25 items, ``nextLink``
                                                carries ``$skiptoken`` (null on the last)
``GET /secrets/{name}`` (or ``/secrets/{name}/``)  the latest version (SecretBundle)
``GET /secrets/{name}/{version}``               that version
``PUT /secrets/{name}``                         a new version ``{value, contentType?,
                                                attributes?: {enabled}, tags?}``

Before a route runs, the middleware logs the request (never a token or a value), applies
the first matching queued fault, answers a request without a valid token with Key Vault's
challenge (401 and ``WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
resource="https://vault.azure.net"``), then checks the ``api-version``. A route checks the
caller's permission (403 ``ForbiddenByRbac``). A disabled version answers 403
``SecretDisabled``, an unknown name or version 404 ``SecretNotFound``. Errors use Key
Vault's envelope ``{"error": {"code", "message", "innererror"?}}``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.arm_login import KEY_VAULT_AUDIENCES
from sandbox.arm_records import SandboxError, auth_fields
from sandbox.arm_tokens import TokenProblem, bearer_token
from sandbox.connector_faults import delay_or_drop

if TYPE_CHECKING:
    from sandbox.keyvault import KeyVaultSandbox

API_VERSIONS = frozenset(
    {"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"}
)
"""The api-versions Key Vault answers (azure-keyvault-secrets 4.12 sends 2026-04-01)."""

LATEST_API_VERSION = "2026-04-01"
MAX_PAGE = 25
"""Key Vault's largest list page (and its default)."""

_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
_ACTIONS = {
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
}
_TOKEN_MESSAGES = {
    "expired": "AKV10013: The token is expired.",
    "audience": "AKV10022: Invalid audience. Expected https://vault.azure.net.",
    "issuer": "AKV10032: Invalid issuer.",
}
CLAIMS_KEY = web.RequestKey("keyvault_sandbox_claims", dict)


@dataclass
class VaultRecord:
    """One request as the vault saw and answered it (no token, no secret value).

    ``status`` is None when the connection was dropped on purpose; ``fault`` names what
    the sandbox injected (delay, drop, status); ``app_id`` is the verified token's appid.
    """

    time: float
    method: str
    path: str
    query: dict[str, str]
    operation: str
    auth_present: bool
    app_id: str | None = None
    status: int | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """True when the vault answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def summary(self) -> str:
        """One line: method, path, status and operation."""
        return f"vault {self.method} {self.path} -> {self.status} ({self.operation})"


class VaultError(SandboxError):
    """A Key Vault error answer; ``inner`` is the ``innererror`` code, when there is one."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer: status, error code, message, inner code, extra headers."""
        super().__init__(status, code, message, headers)
        self.inner = inner

    def body(self) -> dict[str, Any]:
        """Return Key Vault's error body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner is not None:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def not_found(name: str, version: str = "") -> VaultError:
    """Return the 404 of an unknown secret (or version)."""
    shown = f"{name}/{version}" if version else name
    message = (
        f"A secret with (name/id) {shown} was not found in this key vault. If you recently "
        "deleted this secret you may be able to recover it using the correct recovery "
        "command. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182"
    )
    return VaultError(404, "SecretNotFound", message)


def _bad(message: str) -> VaultError:
    """Return a 400 BadParameter."""
    return VaultError(400, "BadParameter", message)


def _unauthorized(vault: KeyVaultSandbox, message: str) -> VaultError:
    """Return Key Vault's 401 with the challenge that tells the client how to get a token."""
    identity = vault.identity
    challenge = (
        f'Bearer authorization="{identity.authority}/{identity.tenant_id}", '
        f'resource="{KEY_VAULT_AUDIENCES[0]}"'
    )
    return VaultError(401, "Unauthorized", message, headers={"WWW-Authenticate": challenge})


def authenticate(vault: KeyVaultSandbox, header: str | None) -> dict[str, Any]:
    """Return the verified claims of a call's token, or raise the 401 challenge."""
    token = bearer_token(header)
    if token is None:
        raise _unauthorized(vault, "AKV10000: Request is missing a Bearer or PoP token.")
    try:
        return vault.identity.issuer.verify(token, KEY_VAULT_AUDIENCES)
    except TokenProblem as problem:
        message = _TOKEN_MESSAGES.get(problem.kind, "AKV10000: The token is not valid.")
        raise _unauthorized(vault, message) from None


def require(vault: KeyVaultSandbox, request: web.Request, permission: str) -> None:
    """Raise 403 ForbiddenByRbac unless the caller holds ``permission`` on the vault."""
    claims = request[CLAIMS_KEY]
    app_id = str(claims.get("appid", ""))
    if vault.allowed(app_id, permission):
        return
    message = (
        "Caller is not authorized to perform action on resource.\r\n"
        f"Caller: appid={app_id};oid={claims.get('oid')};iss={claims.get('iss')}\r\n"
        f"Action: '{_ACTIONS[permission]}'\r\n"
        f"Resource: '{vault.resource_id}'\r\n"
        "Assignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n"
        f"Vault: {vault.name};location=westeurope\r\n"
    )
    raise VaultError(403, "Forbidden", message, inner="ForbiddenByRbac")


def _operation(request: web.Request) -> str:
    """The operation a request addresses (Key Vault's operation names)."""
    route = request.match_info.route.name
    return route or "Unknown"


def vault_middleware(vault: KeyVaultSandbox) -> Middleware:
    """Return the middleware that logs, faults, authenticates and checks every call."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer one request; every call ends up in the vault's request log."""
        present, _ = auth_fields(request.headers.get("Authorization"))
        query, operation = dict(request.query), _operation(request)
        record = VaultRecord(time.time(), request.method, request.path, query, operation, present)
        try:
            response = await _answer(vault, request, handler, record)
        except SandboxError as err:
            response = err.to_response()
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-keyvault-service-version", "1.9.2778.1")
        record.status = None if record.fault == "drop" else response.status
        vault.record(record)
        return response

    return middleware


async def _answer(
    vault: KeyVaultSandbox, request: web.Request, handler: Handler, record: VaultRecord
) -> web.StreamResponse:
    """Apply a fault, authenticate, check the api-version, then run the route."""
    fault = vault.faults.take(request.method, request.path, request.raw_path)
    if fault is not None:
        dropped = await delay_or_drop(request, fault, record)
        if dropped is not None:
            return dropped
        if fault.status is not None:
            record.fault = "status"
            code = fault.code or ("Throttled" if fault.status == 429 else "ServiceUnavailable")
            message = fault.message or "Fault injected by the Key Vault sandbox."
            raise VaultError(fault.status, code, message, headers=fault.retry_after_header())
    claims = authenticate(vault, request.headers.get("Authorization"))
    record.app_id = claims.get("appid")
    request[CLAIMS_KEY] = claims
    version = request.query.get("api-version")
    if not version:
        raise _bad("The request URI contains an invalid or missing api-version parameter.")
    if version not in API_VERSIONS:
        raise _bad(
            f"The specified version ({version}) is not recognized. "
            f"Consider using the latest supported version ({LATEST_API_VERSION})."
        )
    try:
        return await handler(request)
    except web.HTTPException as exc:
        code = "BadParameter" if exc.status < 500 else "InternalError"
        raise VaultError(exc.status, code, exc.reason) from None


def _secret_name(request: web.Request) -> str:
    """The path's secret name, or 400 if Key Vault would refuse it."""
    name = request.match_info["name"]
    if not _NAME.fullmatch(name):
        raise _bad(f"The request URI contains an invalid name: {name}")
    return name


def _skip(token: str | None) -> int:
    """The list offset a ``$skiptoken`` stands for (0 without one)."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["NextMarker"]
    except (ValueError, KeyError, TypeError):
        raise _bad("The skiptoken is not valid.") from None
    if not isinstance(offset, int) or offset < 0:
        raise _bad("The skiptoken is not valid.")
    return offset


def _skiptoken(offset: int) -> str:
    """The ``$skiptoken`` of the page starting at ``offset``."""
    raw = json.dumps({"NextMarker": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class VaultRoutes:
    """Handlers of the secrets API, bound to one vault."""

    def __init__(self, vault: KeyVaultSandbox) -> None:
        """Bind the handlers to ``vault``."""
        self.vault = vault

    async def list_secrets(self, request: web.Request) -> web.Response:
        """Answer one page of the vault's secrets (no values), by name."""
        require(self.vault, request, "list")
        size = self._page_size(request.query.get("maxresults"))
        offset = _skip(request.query.get("$skiptoken"))
        secrets = self.vault.listed()
        page = secrets[offset : offset + size]
        next_link = None
        if offset + size < len(secrets):
            version = request.query["api-version"]
            next_link = (
                f"{self.vault.url}/secrets?api-version={version}"
                f"&$skiptoken={_skiptoken(offset + size)}&maxresults={size}"
            )
        return web.json_response({"value": page, "nextLink": next_link})

    def _page_size(self, value: str | None) -> int:
        """The page size asked for (``maxresults``), Key Vault's default without one."""
        if value is None:
            return min(self.vault.page_size, MAX_PAGE)
        if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
            raise _bad(f"Invalid maxresults parameter: {value}. It must be from 1 to 25.")
        return int(value)

    async def get_secret(self, request: web.Request) -> web.Response:
        """Answer a version of a secret, the latest unless the path names one."""
        require(self.vault, request, "get")
        name = _secret_name(request)
        return web.json_response(self.vault.bundle(name, request.match_info.get("version", "")))

    async def set_secret(self, request: web.Request) -> web.Response:
        """Store a new version of a secret and answer it."""
        require(self.vault, request, "set")
        name = _secret_name(request)
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise _bad("The request body is not valid JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise _bad("Property 'value' is required and must be a string.")
        attributes = body.get("attributes") or {}
        self.vault.set_secret(
            name,
            body["value"],
            enabled=bool(attributes.get("enabled", True)),
            content_type=body.get("contentType"),
            tags=body.get("tags"),
        )
        return web.json_response(self.vault.bundle(name, ""))


def add_vault_routes(app: web.Application, vault: KeyVaultSandbox) -> None:
    """Register the secrets routes on ``app``; route names are the log's operations."""
    routes = VaultRoutes(vault)
    router = app.router
    router.add_get("/secrets", routes.list_secrets, name="GetSecrets")
    router.add_get("/secrets/{name}", routes.get_secret, name="GetSecret")
    router.add_get("/secrets/{name}/", routes.get_secret, name="GetLatestSecret")
    router.add_get("/secrets/{name}/{version}", routes.get_secret, name="GetSecretVersion")
    router.add_put("/secrets/{name}", routes.set_secret, name="SetSecret")
