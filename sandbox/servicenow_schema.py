"""Validators built from ``contracts/servicenow-table-api.yaml`` (never from product code).

The description is OpenAPI 3.0.3: its schemas become JSON Schema here (``nullable: true``
adds ``null`` to the type; ``example`` is dropped) and ``$ref`` s resolve inside the
document. The sandbox checks every request body it is given against ``ChangeRequestWrite``
and every answer against the schema the description declares for the operation and
status; what fails is kept in ``ServiceNowSandbox.contract_problems`` so a drift between
the sandbox, the description and a client shows up in tests.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema_rs
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from sandbox.arm_schema import CONTRACTS_DIR

SERVICENOW_CONTRACT_PATH = CONTRACTS_DIR / "servicenow-table-api.yaml"
"""Our OpenAPI 3.0.3 description of the ServiceNow Table API."""

_MAX_MESSAGE = 300


@functools.cache
def contract() -> dict[str, Any]:
    """Return the parsed description (read once per process)."""
    document: dict[str, Any] = yaml.safe_load(SERVICENOW_CONTRACT_PATH.read_text("utf-8"))
    return document


def _to_json_schema(node: Any) -> Any:
    """Return an OpenAPI 3.0 schema node as JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _to_json_schema(v) for k, v in node.items() if k not in ("example",)}
    if converted.pop("nullable", False) and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


@functools.cache
def _components() -> dict[str, Any]:
    """Return the description's components as JSON Schema."""
    converted: dict[str, Any] = _to_json_schema(contract()["components"])
    return converted


def _validator(schema: dict[str, Any]) -> Draft7Validator:
    """Return a validator for a schema whose ``$ref`` s point into the components."""
    return _validator_of(json.dumps(schema, sort_keys=True))


@functools.cache
def _validator_of(schema: str) -> Draft7Validator:
    """The validator of one schema (as JSON), built once: building one resolves the refs."""
    return Draft7Validator({**_to_json_schema(json.loads(schema)), "components": _components()})


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow one local ``$ref`` of the description (``#/components/...``)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    found: dict[str, Any] = contract()
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def operation(operation_id: str) -> dict[str, Any]:
    """Return an operation of the description by id; KeyError if there is none."""
    for item in contract()["paths"].values():
        for method, candidate in item.items():
            if method != "parameters" and candidate.get("operationId") == operation_id:
                found: dict[str, Any] = candidate
                return found
    raise KeyError(f"no operation {operation_id!r} in {SERVICENOW_CONTRACT_PATH.name}")


def response_schema(operation_id: str, status: int) -> dict[str, Any] | None:
    """Return the JSON body schema declared for an operation's answer (None: no body).

    Raises KeyError when the description declares no such status for the operation.
    """
    declared = _resolve(operation(operation_id)["responses"][str(status)])
    content = declared.get("content", {}).get("application/json")
    if content is None:
        return None
    schema: dict[str, Any] = content["schema"]
    return schema


def declared_statuses(operation_id: str) -> set[int]:
    """Return the statuses the description lists for an operation."""
    return {int(status) for status in operation(operation_id)["responses"]}


@functools.cache
def _fast_validator_of(schema: str) -> jsonschema_rs.Draft7Validator:
    """The compiled twin of ``_validator_of(schema)``: a quick yes for a body that passes
    (formats unchecked, as there); a refused body goes through ``jsonschema`` for the
    reason."""
    document = {**_to_json_schema(json.loads(schema)), "components": _components()}
    return jsonschema_rs.Draft7Validator(document, validate_formats=False)


def _problem(schema: dict[str, Any], body: object, label: str) -> str | None:
    """Return the most relevant reason ``body`` fails ``schema``, or None."""
    key = json.dumps(schema, sort_keys=True)
    if _fast_validator_of(key).is_valid(body):
        return None
    error = best_match(_validator_of(key).iter_errors(body))
    if error is None:
        return None
    location = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{label} {location}: {error.message}"[:_MAX_MESSAGE]


def answer_problem(operation_id: str, status: int, body: object) -> str | None:
    """Return why an answer breaks the description, or None.

    An error status the operation does not list (the description lists the usual ones
    only, e.g. no 403 on ``table_Get``) is checked against ``ErrorEnvelope``; an
    undeclared success status is a problem.
    """
    try:
        schema = response_schema(operation_id, status)
    except KeyError:
        if status < 400:
            return f"{operation_id}: status {status} is not declared"
        schema = {"$ref": "#/components/schemas/ErrorEnvelope"}
    if schema is None:
        return None if body is None else f"{operation_id} {status}: a body where none is declared"
    return _problem(schema, body, f"{operation_id} {status}")


def request_problem(body: object) -> str | None:
    """Return why a POST/PUT/PATCH body breaks ``ChangeRequestWrite``, or None."""
    return _problem({"$ref": "#/components/schemas/ChangeRequestWrite"}, body, "request")
