"""``POST /api/webhooks/servicenow`` and ``POST /api/webhooks/jsm`` in Warden's OpenAPI
document (``web.openapi``).

The bodies are described as the handlers read them: a ServiceNow business rule's message
(``connectors.servicenow.mapping.record_from_webhook``) and a Jira admin webhook, of which
only ``issue.key`` is read (``connectors.jsm.mapping.issue_key_of_webhook``: Warden reads the
issue again from Jira). Only the fields Warden reads are listed; more are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.jsm.webhook import IDENTIFIER_HEADER, SIGNATURE_HEADER
from core.itsm import RecordType

Answer = Callable[..., dict[str, Any]]

_TEXT = {"type": "string"}
_FILLED = {"type": "string", "pattern": r"\S"}


def _field(text: dict[str, Any], description: str) -> dict[str, Any]:
    """A Table API field: its value as ``text``, or ``{"value", "display_value", "link"}``."""
    shaped = {
        "type": "object",
        "required": ["value"],
        "properties": {"value": text, "display_value": _TEXT, "link": _TEXT},
    }
    return {"oneOf": [text, shaped], "description": description}


SERVICENOW_MESSAGE = {
    "type": "object",
    "description": "What the business rule sends after a record is inserted or updated.",
    "required": ["table", "record"],
    "properties": {
        "table": {"enum": [kind.value for kind in RecordType]},
        "sys_id": {**_TEXT, "description": "When given, the record's `sys_id`."},
        "operation": {**_TEXT, "description": "`insert` or `update` (not read)."},
        "record": {
            "type": "object",
            "description": "The record as the Table API gives it (`sysparm_display_value=all` "
            "or plain values).",
            "required": ["sys_id", "number"],
            "properties": {
                "sys_id": _field(_FILLED, "Its key."),
                "number": _field(_FILLED, "Such as `CHG0030001`."),
                "state": _field(_TEXT, "Its state's value; the display value is its label."),
                "short_description": _field(_TEXT, "Shown on the card."),
                "sys_updated_on": _field(
                    {"type": "string", "pattern": r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?$"},
                    "UTC `YYYY-MM-DD HH:mm:ss`, or empty.",
                ),
            },
        },
    },
}

JIRA_WEBHOOK = {
    "type": "object",
    "description": "A Jira admin webhook about an issue (`jira:issue_created`, "
    "`jira:issue_updated`, …); only `issue.key` is read.",
    "required": ["issue"],
    "properties": {
        "webhookEvent": _TEXT,
        "timestamp": {"type": "integer", "description": "Milliseconds since the epoch."},
        "issue": {
            "type": "object",
            "required": ["key"],
            "properties": {"key": {"type": "string", "minLength": 1}},
        },
    },
}


def servicenow_webhook(
    problem: Answer, json: Answer, signature: list[dict[str, Any]]
) -> dict[str, Any]:
    """The path item of the ServiceNow webhook; ``signature`` is the Standard Webhooks headers."""
    accepted = {
        "type": "object",
        "required": ["record", "cards"],
        "properties": {
            "record": {**_TEXT, "description": "The record's number."},
            "cards": {"type": "integer", "minimum": 0, "description": "Cards redrawn."},
        },
    }
    return {
        "post": {
            "summary": "Receive a ServiceNow business rule's signed record change",
            "description": "Served while ServiceNow is connected and "
            "`WARDEN_SERVICENOW__WEBHOOK_SECRETS` is set. The record's links change, and the "
            "linked incidents' cards are redrawn.",
            "operationId": "servicenowWebhook",
            "parameters": signature,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ServiceNowMessage"}
                    }
                },
            },
            "responses": {
                "202": json(
                    "The links and card redraws committed with the message's id.", accepted
                ),
                "400": problem("Not JSON, or not a record (`field` names the culprit)."),
                "401": problem("Missing, invalid or expired signature, or a message seen before."),
                "413": problem("Body over the size limit."),
                "415": problem("Not application/json."),
                "503": problem("The store could not commit (retry after `Retry-After`)."),
            },
        }
    }


def jsm_webhook(problem: Answer, json: Answer) -> dict[str, Any]:
    """The path item of the Jira Service Management webhook."""
    issue = {**_TEXT, "description": "The issue's key."}
    cards = {"type": "integer", "minimum": 0, "description": "Cards redrawn."}
    accepted = {
        "type": "object",
        "required": ["issue", "cards"],
        "properties": {"issue": issue, "cards": cards},
    }
    unchanged = {
        "type": "object",
        "required": ["issue", "cards"],
        "properties": {
            "issue": issue,
            "cards": {"type": "integer", "enum": [0]},
            "replayed": {"type": "boolean", "description": "A delivery seen before."},
        },
    }
    headers = [
        (SIGNATURE_HEADER, "`sha256=<hex HMAC-SHA256 of the body>` with a webhook secret."),
        (IDENTIFIER_HEADER, "The delivery's id (the same across Jira's retries)."),
    ]
    return {
        "post": {
            "summary": "Receive a Jira admin webhook about a changed issue",
            "description": "Served while Jira Service Management is connected and "
            "`WARDEN_JSM__WEBHOOK_SECRETS` is set. The webhook is a notice: Warden reads the "
            "issue it names from Jira again, so a stale or replayed body cannot set a link back.",
            "operationId": "jsmWebhook",
            "parameters": [
                {"name": name, "in": "header", "required": True, "description": d, "schema": _TEXT}
                for name, d in headers
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/JiraWebhook"}}
                },
            },
            "responses": {
                "200": json("A delivery seen before, or an issue Jira no longer has.", unchanged),
                "202": json(
                    "The links and card redraws committed with the delivery's id.", accepted
                ),
                "400": problem("Not JSON, or names no issue (`field` is `issue.key`)."),
                "401": problem("Missing or invalid `X-Hub-Signature`, or no delivery id."),
                "413": problem("Body over the size limit."),
                "415": problem("Not application/json."),
                "503": problem("Jira or the store could not answer (retry after `Retry-After`)."),
            },
        }
    }
