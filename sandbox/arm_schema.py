"""Validators for Sentinel incident bodies, built from the official Swagger 2.0 contract.

Reads ``contracts/azure-sentinel-incidents-2025-12-01.swagger.json`` (never product code).
Swagger's ``discriminator`` is honoured: an ``Entity`` whose ``kind`` names a kept subtype
(``Account``, ``SecurityAlert``, ...) is also checked against that subtype. Formats
``date-time`` and ``uuid`` are checked. Request bodies lose their ``readOnly`` properties
and their nulls before validation, as ARM ignores them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
"""Directory holding the official API contracts."""

SENTINEL_SWAGGER_PATH = CONTRACTS_DIR / "azure-sentinel-incidents-2025-12-01.swagger.json"
"""Microsoft.SecurityInsights 2025-12-01 incidents subset (Swagger 2.0)."""

SENTINEL_EXAMPLES_DIR = CONTRACTS_DIR / "examples" / "azure-sentinel-2025-12-01"
"""The official x-ms-examples of that swagger."""

API_VERSION = "2025-12-01"
"""The only api-version the sandbox serves."""

_MAX_MESSAGE = 300
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@functools.cache
def swagger() -> dict[str, Any]:
    """Return the parsed Sentinel swagger (read once per process)."""
    document: dict[str, Any] = json.loads(SENTINEL_SWAGGER_PATH.read_text(encoding="utf-8"))
    return document


def definitions() -> dict[str, Any]:
    """Return the swagger's ``definitions``."""
    found: dict[str, Any] = swagger()["definitions"]
    return found


def _format_checker() -> FormatChecker:
    """Return a checker for the two formats the contract relies on."""
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        """Accept RFC 3339 timestamps (any number of fraction digits)."""
        return not isinstance(value, str) or bool(_DATE_TIME.match(value))

    @checker.checks("uuid", raises=ValueError)
    def _uuid(value: object) -> bool:
        """Accept GUIDs; ValueError (a failed check) otherwise."""
        if isinstance(value, str):
            uuid.UUID(value)
        return True

    return checker


def _subtype_schema(base: str, kind: object) -> dict[str, Any] | None:
    """Return the own keywords (no ``allOf``) of the subtype of ``base`` for ``kind``."""
    base_ref = f"#/definitions/{base}"
    for schema in definitions().values():
        parents = [part.get("$ref") for part in schema.get("allOf", [])]
        if schema.get("x-ms-discriminator-value") == kind and base_ref in parents:
            return {key: value for key, value in schema.items() if key != "allOf"}
    return None


def _discriminator(
    validator: Any, prop: str, instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """Validate a polymorphic instance against the subtype its discriminator names."""
    if not isinstance(instance, dict) or prop not in instance:
        return
    base = _definition_name(schema)
    subtype = _subtype_schema(base, instance[prop]) if base else None
    if subtype is not None:
        yield from validator.descend(instance, subtype)


def _definition_name(schema: dict[str, Any]) -> str | None:
    """Return the name under which ``schema`` is a definition, if it is one."""
    for name, candidate in definitions().items():
        if candidate is schema:
            return name
    return None


_SwaggerValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft4Validator, {"discriminator": _discriminator}
)


@functools.cache
def definition_validator(name: str) -> Draft4Validator:
    """Return a validator for ``#/definitions/<name>``; KeyError for an unknown name."""
    if name not in definitions():
        raise KeyError(f"no definition {name!r} in {SENTINEL_SWAGGER_PATH.name}")
    schema = {"$ref": f"#/definitions/{name}", "definitions": definitions()}
    validator: Draft4Validator = _SwaggerValidator(schema, format_checker=_format_checker())
    return validator


def schema_errors(name: str, body: object) -> list[str]:
    """Return every reason ``body`` fails definition ``name`` (empty when valid)."""
    return [_describe(name, error) for error in definition_validator(name).iter_errors(body)]


def schema_error(name: str, body: object) -> str | None:
    """Return the most relevant reason ``body`` fails definition ``name``, or None."""
    error = best_match(definition_validator(name).iter_errors(body))
    return None if error is None else _describe(name, error)


def _describe(name: str, error: ValidationError) -> str:
    """Return a short, located description of a validation error."""
    location = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{name} {location}: {error.message}"[:_MAX_MESSAGE]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (one level; definitions do not chain bare refs)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        resolved: dict[str, Any] = definitions()[ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the properties of a schema, merged with those of its ``allOf`` parents."""
    schema = _resolve(schema)
    merged: dict[str, Any] = {}
    for parent in schema.get("allOf", []):
        merged.update(_properties(parent))
    merged.update(schema.get("properties", {}))
    return merged


def _strip(schema: dict[str, Any], value: Any) -> Any:
    """Return ``value`` without nulls and the properties ``schema`` marks readOnly (recursively)."""
    schema = _resolve(schema)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_strip(schema["items"], item) for item in value]
    if not isinstance(value, dict):
        return value
    known = _properties(schema)
    kept: dict[str, Any] = {}
    for key, item in value.items():
        declared = known.get(key)
        if item is None:
            continue
        if declared is None:
            kept[key] = item
        elif not declared.get("readOnly") and not _resolve(declared).get("readOnly"):
            kept[key] = _strip(declared, item)
    return kept


def strip_read_only(name: str, body: object) -> Any:
    """Return a copy of ``body`` without the readOnly properties of definition ``name``.

    Properties sent as JSON ``null`` are dropped too: in a PUT they mean "not set".
    """
    return _strip({"$ref": f"#/definitions/{name}"}, copy.deepcopy(body))


def request_error(name: str, body: object) -> str | None:
    """Return why a request body fails definition ``name`` once readOnly parts are ignored."""
    return schema_error(name, strip_read_only(name, body))


def response_definition(operation_id: str, status: int) -> str | None:
    """Return the definition the swagger declares for an operation's answer with ``status``.

    Falls back to the ``default`` response (CloudError). None means "no body".
    Raises KeyError for an unknown operation id.
    """
    for path_item in swagger()["paths"].values():
        for method, operation in path_item.items():
            if method == "parameters" or operation.get("operationId") != operation_id:
                continue
            responses = operation["responses"]
            declared = responses.get(str(status), responses.get("default", {}))
            ref = declared.get("schema", {}).get("$ref")
            return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None
    raise KeyError(f"no operation {operation_id!r}")


def load_example(file_name: str) -> dict[str, Any]:
    """Return one official example (``parameters`` and ``responses``) by file name."""
    example: dict[str, Any] = json.loads(
        (SENTINEL_EXAMPLES_DIR / file_name).read_text(encoding="utf-8")
    )
    return example
