"""Validators for Bot Framework Connector bodies, built from the official contracts.

The sandbox reads ``contracts/botframework-activity-v3.schema.json`` (draft-04,
derived from the Connector swagger) and never imports product code. Each
validator is built once per process and shared by every sandbox instance.

A body is first checked by ``jsonschema_rs`` (compiled, about 400 times faster than the
pure-Python validator on an incident card's activity); only a body it refuses goes through
``jsonschema`` for the error a client is shown. Both check draft-04 without formats, so the
answer is the same; the fast check keeps the sandbox from bounding the delivery benchmark.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
"""Directory holding the official API contracts (JSON Schema, Swagger, OpenAPI)."""

ACTIVITY_SCHEMA_PATH = CONTRACTS_DIR / "botframework-activity-v3.schema.json"
"""Activity JSON Schema with the Connector request/response bodies under definitions."""

CONNECTOR_SWAGGER_PATH = CONTRACTS_DIR / "botframework-connector-v3.swagger.json"
"""Bot Connector REST API v3 (Swagger 2.0)."""

_MAX_MESSAGE = 300

# Message activities must carry something a client can render.
_CONTENT_FIELDS = ("text", "attachments", "suggestedActions")


@functools.cache
def activity_schema_document() -> dict[str, Any]:
    """Return the parsed activity schema document (read once per process)."""
    document: dict[str, Any] = json.loads(ACTIVITY_SCHEMA_PATH.read_text(encoding="utf-8"))
    return document


@functools.cache
def definition_validator(name: str) -> Draft4Validator:
    """Return a draft-04 validator for ``#/definitions/<name>`` of the activity schema.

    ``$ref``s resolve inside the same document. Raises KeyError for an unknown name.
    """
    document = activity_schema_document()
    if name not in document["definitions"]:
        raise KeyError(f"no definition {name!r} in {ACTIVITY_SCHEMA_PATH.name}")
    schema = {"$ref": f"#/definitions/{name}", "definitions": document["definitions"]}
    return Draft4Validator(schema)


@functools.cache
def _fast_validator(name: str) -> jsonschema_rs.Draft4Validator:
    """The compiled twin of ``definition_validator(name)`` (formats unchecked, as there)."""
    document = activity_schema_document()
    if name not in document["definitions"]:
        raise KeyError(f"no definition {name!r} in {ACTIVITY_SCHEMA_PATH.name}")
    schema = {"$ref": f"#/definitions/{name}", "definitions": document["definitions"]}
    return jsonschema_rs.Draft4Validator(schema, validate_formats=False)


def schema_error(name: str, body: object) -> str | None:
    """Return a short description of why ``body`` fails definition ``name``, or None if valid."""
    if _fast_validator(name).is_valid(body):
        return None
    error = best_match(definition_validator(name).iter_errors(body))
    if error is None:
        return None
    location = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{name} {location}: {error.message}"[:_MAX_MESSAGE]


def activity_error(body: object) -> str | None:
    """Return why ``body`` is not an acceptable outgoing activity, or None if it is.

    Checks the Activity schema, then the rules the real Connector enforces beyond
    it: ``type`` is required, and a ``message`` activity needs text, attachments
    or suggested actions.
    """
    problem = schema_error("Activity", body)
    if problem is not None:
        return problem
    assert isinstance(body, dict)
    if not body.get("type"):
        return "Activity type is required"
    if body["type"] == "message" and not _has_content(body):
        return "Message activity must contain text, attachments or suggestedActions"
    return None


def _has_content(body: dict[str, Any]) -> bool:
    """Tell whether a message activity carries renderable content."""
    for field in _CONTENT_FIELDS:
        value = body.get(field)
        if isinstance(value, str) and value.strip():
            return True
        if isinstance(value, (list, dict)) and value:
            return True
    return False
