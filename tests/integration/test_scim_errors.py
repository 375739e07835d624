"""SCIM refusals: the RFC 7644 §3.12 Error body and status, never problem+json, never a 500."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse

from tests.integration.conftest import WardenFactory
from tests.integration.scim_support import PREVIOUS, SCIM, scim_warden

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


async def _error(response: ClientResponse, status: int, scim_type: str | None = None) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == SCIM
    body = await response.json(content_type=None)
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == str(status)
    assert body.get("scimType") == scim_type
    return body


async def test_scim_wrong_token_401_error_body(start_warden: WardenFactory) -> None:
    """A wrong or missing bearer is 401 with WWW-Authenticate and a SCIM Error."""
    scim = await scim_warden(start_warden)
    response = await scim.send("GET", "/Users", token="not-the-token")
    await _error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bare = await scim.warden.client.get("/scim/v2/ServiceProviderConfig")
    await _error(bare, 401)


async def test_scim_previous_token_still_accepted(start_warden: WardenFactory) -> None:
    """During rotation the previous token works as well as the current one."""
    scim = await scim_warden(start_warden)
    response = await scim.send("GET", "/Users", token=PREVIOUS)
    assert response.status == 200


async def test_scim_bad_filter_400_invalid_filter(start_warden: WardenFactory) -> None:
    """A filter that does not parse, or names no attribute of a User, is 400 invalidFilter."""
    scim = await scim_warden(start_warden)
    await _error(await scim.send("GET", "/Users?filter=userName eq"), 400, "invalidFilter")
    await _error(await scim.send("GET", '/Users?filter=shoeSize eq "9"'), 400, "invalidFilter")


async def test_scim_unknown_attribute_400_nothing_created(start_warden: WardenFactory) -> None:
    """A User with an attribute the schema does not define is refused, and not stored."""
    scim = await scim_warden(start_warden)
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "x@contoso.com",
        "shoeSize": 9,
    }
    error = await _error(await scim.send("POST", "/Users", body), 400, "invalidSyntax")
    assert "shoeSize" in error["detail"]
    assert (await scim.ok("GET", "/Users"))["totalResults"] == 0


async def test_scim_duplicate_user_name_409_uniqueness(start_warden: WardenFactory) -> None:
    """A second person with the same user name (any case) is 409 uniqueness."""
    scim = await scim_warden(start_warden)
    await scim.user("dup@contoso.com")
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "DUP@contoso.com",
    }
    await _error(await scim.send("POST", "/Users", body), 409, "uniqueness")


async def test_scim_stale_if_match_412(start_warden: WardenFactory) -> None:
    """A PATCH whose If-Match names an older version is 412 and changes nothing."""
    scim = await scim_warden(start_warden)
    user = await scim.user("etag@contoso.com")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "New"}],
    }
    path = f"/Users/{user['id']}"
    await scim.ok("PATCH", path, body)
    stale = await scim.send("PATCH", path, body, **{"If-Match": user["meta"]["version"]})
    await _error(stale, 412)


async def test_scim_unknown_id_and_url_404_wrong_method_405(start_warden: WardenFactory) -> None:
    """An unknown id or URL is a 404 Error; a wrong method on discovery a 405 Error."""
    scim = await scim_warden(start_warden)
    await _error(await scim.send("GET", "/Users/nobody"), 404)
    await _error(await scim.send("GET", "/Pets"), 404)
    await _error(await scim.send("POST", "/ServiceProviderConfig", {}), 405)


async def test_scim_not_json_400_invalid_syntax(start_warden: WardenFactory) -> None:
    """A body that is not JSON, or not UTF-8, is 400 invalidSyntax, not a 500."""
    scim = await scim_warden(start_warden)
    for body in (b"{not json", b'{"userName": "\xff"}'):
        response = await scim.warden.client.post(
            "/scim/v2/Users",
            data=body,
            headers={"Authorization": f"Bearer {PREVIOUS}", "Content-Type": SCIM},
        )
        await _error(response, 400, "invalidSyntax")
