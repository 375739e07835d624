"""The SCIM endpoint's edge: bearer tokens, SCIM error bodies and ``application/scim+json``.

Every refusal under ``/scim/v2`` is a SCIM ``Error`` (RFC 7644 §3.12) with the status and
``scimType`` the RFC prescribes, never problem+json and never a bare 500: a wrong or missing
token is 401 (with ``WWW-Authenticate``), a bad filter 400 ``invalidFilter``, an unknown
attribute 400 ``invalidValue``/``invalidPath``, a taken user name 409 ``uniqueness``, an
``If-Match`` that no longer holds 412, an unknown URL 404 and a wrong method 405. A failure
Warden did not foresee is a 500 Error whose detail carries the correlation id that is logged
with the traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from scim2_models import Error, InvalidSyntaxException, SCIMException

from core.errors import RosterConflict, RosterNotFound, RosterVersionMismatch, StoreUnavailable
from core.json_body import json_value
from core.logs import correlation_id

log = logging.getLogger(__name__)

SCIM_TYPE = "application/scim+json"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_KNOWN: dict[type[Exception], tuple[int, str | None]] = {
    RosterConflict: (409, "uniqueness"),
    RosterNotFound: (404, None),
    RosterVersionMismatch: (412, None),
    StoreUnavailable: (503, None),
}


def scim_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A SCIM JSON answer."""
    return web.Response(
        status=status, text=json.dumps(body), content_type=SCIM_TYPE, headers=headers
    )


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A SCIM Error answer (``status`` is a string in the body, as RFC 7644 §3.12 shows)."""
    error = Error(status=status, scim_type=scim_type, detail=detail)
    return scim_response(error.model_dump(), status, headers)


def _from_error(error: Error, headers: dict[str, str] | None = None) -> web.Response:
    status = error.status or 400
    return scim_response(error.model_dump(), status, headers)


def bearer_middleware(tokens: Sequence[str]) -> Any:
    """Refuse (401) a request without one of ``tokens`` as its bearer; any one is accepted."""
    encoded = [token.encode() for token in tokens]

    @web.middleware
    async def check(request: web.Request, handler: _Handler) -> web.StreamResponse:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        presented = given.strip().encode()
        valid = scheme.casefold() == "bearer" and any(
            hmac.compare_digest(presented, token) for token in encoded
        )
        if not valid:
            return error_response(
                401,
                "A valid bearer token is required.",
                headers={"WWW-Authenticate": 'Bearer realm="Warden SCIM"'},
            )
        return await handler(request)

    return check


@web.middleware
async def scim_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Turn every failure under ``/scim/v2`` into a SCIM Error answer."""
    try:
        return await handler(request)
    except SCIMException as exc:
        return _from_error(exc.to_error())
    except ValidationError as exc:
        return _from_error(Error.from_validation_errors(exc)[0])
    except json.JSONDecodeError as exc:
        return error_response(400, f"The body is not JSON: {exc.msg}.", "invalidSyntax")
    except tuple(_KNOWN) as exc:
        status, scim_type = _KNOWN[type(exc)]
        retry = {"Retry-After": "5"} if status == 503 else None
        return error_response(status, str(exc), scim_type, headers=retry)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, headers=allow)
    except Exception:
        ref = correlation_id.get() or uuid.uuid4().hex[:12]
        log.exception("unhandled SCIM error on %s %s (ref %s)", request.method, request.path, ref)
        return error_response(500, f"Warden failed to handle this request (reference {ref}).")


async def read_body(request: web.Request) -> Any:
    """The JSON body of a SCIM request; ``invalidSyntax`` when it is not a JSON object."""
    body = json_value(await request.read() or b"null")
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="The body must be a JSON object.")
    return body
