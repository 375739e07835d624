"""The sandbox's Entra ID endpoints: the v2.0 token endpoint and the documents MSAL reads first.

``POST /{tenant}/oauth2/v2.0/token``           client_credentials grant (client_secret_post)
``GET  /{tenant}/v2.0/.well-known/openid-configuration``   (and the v1 path without v2.0)
``GET  /{tenant}/discovery/v2.0/keys``         the JWKS with the signing key
``GET  /common/discovery/instance``            instance discovery (MSAL, unless disabled)

The async ``azure.identity.aio.ClientSecretCredential`` only POSTs to the token endpoint;
the sync one goes through MSAL, which first reads the openid-configuration (and, unless
``disable_instance_discovery=True``, asks login.microsoftonline.com for instance
discovery, which this sandbox cannot answer). Errors are the token endpoint's JSON with
``AADSTS`` numbers, e.g. 401 ``invalid_client`` AADSTS7000215 for a wrong secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from sandbox.arm_records import AadError
from sandbox.arm_rules import ARM_AUDIENCES
from sandbox.arm_tokens import GRAPH_APP_ID, ClientApp

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", GRAPH_APP_ID)
"""Token audiences Graph accepts."""

KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
"""Azure Key Vault's application id."""

KEY_VAULT_AUDIENCES = ("https://vault.azure.net", KEY_VAULT_APP_ID)
"""Token audiences Key Vault accepts (``sandbox.keyvault``)."""

_RESOURCES = (*ARM_AUDIENCES, *GRAPH_AUDIENCES, *KEY_VAULT_AUDIENCES)
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _missing(name: str) -> AadError:
    """Return AADSTS900144 for a missing form parameter."""
    message = f"The request body must contain the following parameter: '{name}'."
    return AadError(400, "invalid_request", 900144, message)


def _unknown_tenant(tenant: str, error: str = "invalid_request") -> AadError:
    """Return AADSTS90002 for a tenant the sandbox does not host."""
    message = (
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud."
    )
    return AadError(400, error, 90002, message)


class LoginRoutes:
    """Handlers of the Entra ID endpoints, bound to one sandbox."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    def _tenant(self, request: web.Request, error: str = "invalid_request") -> str:
        """Return the path's tenant, or raise AADSTS90002 if it is not the sandbox's."""
        tenant = request.match_info["tenant"]
        if tenant.lower() != self.sandbox.tenant_id.lower():
            raise _unknown_tenant(tenant, error)
        return self.sandbox.tenant_id

    async def token(self, request: web.Request) -> web.Response:
        """Answer a client_credentials token request, or the Entra ID error for it."""
        self._tenant(request)
        form = await request.post()
        fields = {key: str(value) for key, value in form.items()}
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise _missing("grant_type")
        if grant_type != "client_credentials":
            message = f"The app requested an unsupported grant type '{grant_type}'."
            raise AadError(400, "unsupported_grant_type", 70003, message)
        app = self._client(fields)
        resource = self._resource(fields.get("scope"))
        roles = app.graph_roles if resource in GRAPH_AUDIENCES else ()
        token, seconds = self.sandbox.issuer.issue(app, resource, roles=roles)
        body = {
            "token_type": "Bearer",
            "expires_in": seconds,
            "ext_expires_in": seconds,
            "access_token": token,
        }
        return web.json_response(body, headers=_NO_STORE)

    def _client(self, fields: dict[str, str]) -> ClientApp:
        """Return the authenticated client, or raise the Entra ID error for the request."""
        client_id = fields.get("client_id")
        if not client_id:
            raise _missing("client_id")
        app = self.sandbox.clients.get(client_id.lower())
        if app is None:
            message = (
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.sandbox.tenant_id}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant."
            )
            raise AadError(400, "unauthorized_client", 700016, message)
        secret = fields.get("client_secret")
        if not secret:
            message = (
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'."
            )
            raise AadError(401, "invalid_client", 7000218, message)
        if not app.secret_matches(secret):
            message = (
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{app.client_id}'."
            )
            raise AadError(401, "invalid_client", 7000215, message)
        return app

    def _resource(self, scope: str | None) -> str:
        """Return the resource of a ``<resource>/.default`` scope, or raise the error."""
        if not scope:
            raise _missing("scope")
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            message = (
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI)."
            )
            raise AadError(400, "invalid_scope", 1002012, message)
        resource = scopes[0].removesuffix("/.default")
        if resource not in _RESOURCES:
            message = (
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.sandbox.tenant_id}. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You might have sent your authentication request to the wrong tenant."
            )
            raise AadError(400, "invalid_resource", 500011, message)
        return resource

    async def openid_configuration(self, request: web.Request) -> web.Response:
        """Answer the tenant's OpenID Connect metadata (v2.0 or v1 path)."""
        tenant = self._tenant(request, "invalid_tenant")
        return web.json_response(self.metadata(tenant))

    def metadata(self, tenant: str) -> dict[str, Any]:
        """Return the v2.0 OpenID Connect metadata document of ``tenant``."""
        base = f"{self.sandbox.authority}/{tenant}"
        host = urlsplit(self.sandbox.authority).netloc
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": host,
            "msgraph_host": host,
        }

    async def keys(self, request: web.Request) -> web.Response:
        """Answer the JSON Web Key Set."""
        self._tenant(request, "invalid_tenant")
        return web.json_response(self.sandbox.issuer.jwks())

    async def instance_discovery(self, request: web.Request) -> web.Response:
        """Answer MSAL's instance discovery for this authority's host."""
        host = urlsplit(self.sandbox.authority).netloc
        tenant = self.sandbox.tenant_id
        body = {
            "tenant_discovery_endpoint": (
                f"{self.sandbox.authority}/{tenant}/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
        return web.json_response(body)


def add_login_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Register the Entra ID routes on ``app``; route names are used in the request log."""
    routes = LoginRoutes(sandbox)
    router = app.router
    router.add_get(
        "/common/discovery/instance", routes.instance_discovery, name="InstanceDiscovery"
    )
    router.add_post("/{tenant}/oauth2/v2.0/token", routes.token, name="Token")
    router.add_get(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        routes.openid_configuration,
        name="OpenIdConfiguration",
    )
    router.add_get(
        "/{tenant}/.well-known/openid-configuration",
        routes.openid_configuration,
        name="OpenIdConfigurationV1",
    )
    router.add_get("/{tenant}/discovery/v2.0/keys", routes.keys, name="Keys")
