"""Warden's own HTTP API described as OpenAPI 3.0: served at ``GET /openapi.json``.

The document is built here, next to the handlers it describes, and the test suite runs
schemathesis against a live Warden with it: no 5xx, and every answer as described.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from core.posture import PolicyPosture, PostureStatus
from web.openapi_budgets import BUDGET_SCHEMA, COMMON_SCHEMA, budget_webhook
from web.openapi_itsm import JIRA_WEBHOOK, SERVICENOW_MESSAGE, jsm_webhook, servicenow_webhook

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string", "nullable": True},
        "correlation_id": {"type": "string"},
    },
}
INCIDENT = {
    "type": "object",
    "description": "A Microsoft Sentinel incident resource (api-version 2025-12-01), or the "
    'automation trigger envelope {"object": <incident>, "workspaceInfo": {...}}.',
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "etag": {"type": "string"},
        "type": {"type": "string"},
        "properties": {
            "type": "object",
            "required": ["title", "severity", "status", "lastModifiedTimeUtc"],
            "properties": {
                "title": {"type": "string"},
                "severity": {"enum": ["Informational", "Low", "Medium", "High"]},
                "status": {"enum": ["New", "Active", "Closed"]},
                "lastModifiedTimeUtc": {"type": "string", "format": "date-time"},
            },
        },
        "object": {"type": "object"},
    },
}
SIGNATURE_HEADERS = [
    {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("webhook-id", "Standard Webhooks message id; the same id is answered once."),
        ("webhook-timestamp", "UNIX seconds; refused outside ±5 minutes."),
        ("webhook-signature", "`v1,<base64 HMAC-SHA256>`, space-separated when several."),
    )
]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _webhook() -> dict[str, Any]:
    accepted = {
        "type": "object",
        "required": ["incident"],
        "properties": {"incident": {"type": "string"}},
    }
    return {
        "post": {
            "summary": "Receive a signed Sentinel incident",
            "operationId": "sentinelWebhook",
            "parameters": SIGNATURE_HEADERS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Incident"}}
                },
            },
            "responses": {
                "202": _json("Stored with its card work, in one transaction.", accepted),
                "400": _problem("Not JSON, or not an incident (`field` names the culprit)."),
                "401": _problem("Missing, invalid or expired signature."),
                "413": _problem("Body over the size limit."),
                "415": _problem("Not application/json."),
                "503": _problem(
                    "The store could not commit (retry after `Retry-After`), or the Sentinel "
                    "connector is switched off (`connector-off`: nothing was accepted)."
                ),
            },
        }
    }


def _health() -> dict[str, Any]:
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    ready = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {"status": {"enum": ["ready", "not ready"]}, "checks": {"type": "object"}},
    }
    return {
        "/healthz": {
            "get": {
                "summary": "The process answers",
                "operationId": "healthz",
                "responses": {"200": _json("Alive.", status)},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Store, migrations, worker, breakers and connectors",
                "description": "`checks.connectors` lists each connector's version and state "
                "(`on`, `off`, `not configured`); a connector off does not make Warden unready.",
                "operationId": "readyz",
                "responses": {"200": _json("Ready.", ready), "503": _json("Not ready.", ready)},
            }
        },
    }


def _posture() -> dict[str, Any]:
    listed = {"type": "array", "items": {"$ref": "#/components/schemas/PolicyPosture"}}
    ok = _json("Posture records, ordered by requirement, policy and resource.", listed)
    ok["headers"] = {
        "x-next-cursor": {
            "description": "The `cursor` of the next page; absent on the last page.",
            "schema": {"type": "string"},
        }
    }
    query = [
        ("requirement", "Only this catalog requirement.", {"type": "string"}),
        ("status", "Only this status.", {"enum": [s.value for s in PostureStatus]}),
        ("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500}),
        ("cursor", "The `x-next-cursor` of the previous page.", {"type": "string"}),
    ]
    return {
        "get": {
            "summary": "Policy posture derived from evidence requests",
            "description": "Per requirement, policy assignment and resource: the newest state "
            "of Azure Policy evidence. Requires an Entra bearer when Warden accepts them "
            "(`WARDEN_WEBHOOK_ENTRA_TENANT_IDS`); open in sandbox mode otherwise.",
            "operationId": "listPosture",
            "parameters": [
                {"name": name, "in": "query", "required": False, "description": d, "schema": sc}
                for name, d, sc in query
            ],
            "responses": {
                "200": ok,
                "400": _problem("A bad query parameter (`field` names it)."),
                "401": _problem("No valid Entra bearer token."),
            },
        }
    }


def _posture_schemas() -> dict[str, Any]:
    """PolicyPosture's JSON Schema with its definitions hoisted into the components."""
    schema = PolicyPosture.model_json_schema(
        by_alias=True, mode="serialization", ref_template="#/components/schemas/{model}"
    )
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {"PolicyPosture": schema, **definitions}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of every HTTP endpoint Warden can serve (Bot Framework's
    excluded); ``served_document`` keeps those one running Warden mounts."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Warden",
            "version": "0.1.0",
            "description": "Sentinel incidents in Microsoft Teams. `POST /api/messages` is the "
            "Bot Framework protocol (botbuilder) and is not described here; nor is `/scim/v2`, "
            "SCIM 2.0 (RFC 7644), which describes itself at `/scim/v2/ServiceProviderConfig`, "
            "`/Schemas` and `/ResourceTypes`.",
        },
        "paths": {
            "/api/webhooks/sentinel": _webhook(),
            "/api/webhooks/budgets": budget_webhook(_problem, _json),
            "/api/webhooks/servicenow": servicenow_webhook(_problem, _json, SIGNATURE_HEADERS),
            "/api/webhooks/jsm": jsm_webhook(_problem, _json),
            "/api/posture": _posture(),
            **_health(),
        },
        "components": {
            "schemas": {
                "Problem": PROBLEM,
                "Incident": INCIDENT,
                "BudgetAlertSchema": BUDGET_SCHEMA,
                "CommonAlertSchemaBudget": COMMON_SCHEMA,
                "ServiceNowMessage": SERVICENOW_MESSAGE,
                "JiraWebhook": JIRA_WEBHOOK,
                **_posture_schemas(),
            }
        },
    }


def served_document(mounted: Collection[tuple[str, str]]) -> dict[str, Any]:
    """The document of the Warden whose router mounts ``mounted`` (``(METHOD, path)`` pairs):
    an operation whose route is not mounted (a webhook whose secrets are not set) is left
    out, and so is a path left with none, so clients see only what answers here."""
    document = openapi_document()
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        kept = {verb: op for verb, op in item.items() if (verb.upper(), path) in mounted}
        if kept:
            paths[path] = kept
    return {**document, "paths": paths}
