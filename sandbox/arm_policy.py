"""Policy Insights policy states (api-version 2024-10-01) kept by the ARM sandbox.

Reads ``contracts/azure-policyinsights-policystates-2024-10-01.swagger.json``'s official
examples (never product code) for its first records, and serves
``PolicyStates_ListQueryResultsFor{Subscription,ResourceGroup,Resource}``:

* only the latest record per (resource, assignment, definition, reference id) is kept, so
  ``default`` (every record) and ``latest`` answer the same;
* ``$filter``: ``<field> eq|ne <literal>`` clauses joined by ``and`` (field names and string
  values compare case-insensitively, as ARM ids do; ``null`` matches a missing field);
* ``$top``: the most records the whole query returns (the swagger's "maximum number of
  records to return"); pages hold ``page_size`` records and end with ``@odata.nextLink``
  (``null`` on the last page, as the service sends) carrying an opaque ``$skiptoken``;
* records carry the service's ``null`` strings (``policyDefinitionReferenceId``, ...).
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.arm_odata import Cursors, ODataError, parse_top
from sandbox.arm_policy_attest import Attestations

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
POLICY_SWAGGER_PATH = CONTRACTS_DIR / "azure-policyinsights-policystates-2024-10-01.swagger.json"
"""Microsoft.PolicyInsights 2024-10-01 policyStates subset (Swagger 2.0)."""

POLICY_EXAMPLES_DIR = CONTRACTS_DIR / "examples" / "azure-policyinsights-2024-10-01"
"""The official x-ms-examples of that swagger."""

POLICY_API_VERSION = "2024-10-01"
"""The only Policy Insights api-version the sandbox serves."""

STATE_FIELDS: tuple[str, ...] = tuple(
    [
        "timestamp",
        "resourceId",
        "policyAssignmentId",
        "policyDefinitionId",
        "effectiveParameters",
        "isCompliant",
        "subscriptionId",
        "resourceType",
        "resourceLocation",
        "resourceGroup",
        "resourceTags",
        "policyAssignmentName",
        "policyAssignmentOwner",
        "policyAssignmentParameters",
        "policyAssignmentScope",
        "policyDefinitionName",
        "policyDefinitionAction",
        "policyDefinitionCategory",
        "policySetDefinitionId",
        "policySetDefinitionName",
        "policySetDefinitionOwner",
        "policySetDefinitionCategory",
        "policySetDefinitionParameters",
        "managementGroupIds",
        "policyDefinitionReferenceId",
        "complianceState",
    ]
)
"""The PolicyState columns a record carries (``null`` where the service sends null)."""

_BY_LOWER = {name.lower(): name for name in STATE_FIELDS}
_KEY_FIELDS = (
    "resourceId",
    "policyAssignmentId",
    "policyDefinitionId",
    "policyDefinitionReferenceId",
)
_REQUIRED = ("resourceId", "policyAssignmentId", "policyDefinitionId", "complianceState")
_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z]+)\s+(?P<op>eq|ne)\s+(?P<literal>'(?:[^']|'')*'|null|true|false)\s*$",
    re.IGNORECASE,
)
_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"(?P<namespace>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Comparison:
    """One ``<field> eq|ne <literal>`` clause (``field`` as the record spells it)."""

    field: str
    negate: bool
    literal: str | bool | None

    def matches(self, record: dict[str, Any]) -> bool:
        """Tell whether a record satisfies the clause."""
        value = record.get(self.field)
        if isinstance(value, str) and isinstance(self.literal, str):
            equal = value.lower() == self.literal.lower()
        else:
            equal = value == self.literal
        return equal != self.negate


def parse_policy_filter(text: str | None) -> list[Comparison]:
    """Parse a ``$filter``; ``ODataError`` (answered 400) for what the sandbox cannot honour."""
    if text is None or not text.strip():
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        found = _CLAUSE.match(part)
        field = _BY_LOWER.get(found["field"].lower()) if found else None
        if found is None or field is None:
            raise ODataError(f"Invalid $filter clause '{part.strip()}'.")
        raw = found["literal"]
        literal: str | bool | None = None
        if raw.startswith("'"):
            literal = raw[1:-1].replace("''", "'")
        elif raw.lower() in ("true", "false"):
            literal = raw.lower() == "true"
        clauses.append(Comparison(field, found["op"].lower() == "ne", literal))
    return clauses


def state_key(record: dict[str, Any]) -> str:
    """The identity of a latest record: resource, assignment, definition and reference id."""
    return "|".join(str(record.get(part) or "").lower() for part in _KEY_FIELDS)


def example_states() -> list[dict[str, Any]]:
    """The records of the official examples, without their ``@odata`` annotations."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(POLICY_EXAMPLES_DIR.glob("PolicyStates_*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))["responses"]["200"]["body"]
        for item in body["value"]:
            record = {k: v for k, v in item.items() if not k.startswith("@odata.")}
            found.setdefault(state_key(record), record)
    return list(found.values())


def complete_state(given: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """A full record from the fields given: ids are required, the rest derived or null.

    ``ValueError`` names a missing id or an unknown field.
    """
    unknown = [key for key in given if key not in _BY_LOWER.values()]
    if unknown:
        raise ValueError(f"unknown PolicyState fields: {', '.join(sorted(unknown))}")
    missing = [key for key in _REQUIRED if not isinstance(given.get(key), str) or not given[key]]
    if missing:
        raise ValueError(f"a policy state needs {', '.join(missing)}")
    record: dict[str, Any] = dict.fromkeys(STATE_FIELDS)
    found = _RESOURCE_ID.match(given["resourceId"])
    if found is not None:
        record.update(
            subscriptionId=found["sub"],
            resourceGroup=found["rg"],
            resourceType=f"/{found['namespace']}/{found['type']}",
        )
    record.update(
        timestamp=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        policyAssignmentName=given["policyAssignmentId"].rsplit("/", 1)[-1],
        policyDefinitionName=given["policyDefinitionId"].rsplit("/", 1)[-1],
        resourceLocation="eastus",
    )
    record.update(given)
    record["isCompliant"] = record["complianceState"] == "Compliant"
    return record


def generate_state(subscription: str, rng: random.Random, now: datetime.datetime) -> dict[str, Any]:
    """A plausible NonCompliant record of a storage account in ``subscription``."""
    group = rng.choice(("rg-app", "rg-data", "rg-network"))
    name = f"st{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
    return complete_state(
        {
            "resourceId": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.Storage/storageAccounts/{name}",
            "policyAssignmentId": f"/subscriptions/{subscription}/providers/"
            "Microsoft.Authorization/policyAssignments/secure-transfer",
            "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/"
            "404c3081-a854-4457-ae30-26a93ef643f9",
            "policyDefinitionAction": "audit",
            "complianceState": "NonCompliant",
        },
        now,
    )


class PolicyStates:
    """The latest policy-state records, queried as Policy Insights does. Not thread-safe."""

    def __init__(self, now: Callable[[], datetime.datetime], page_size: int = 1000) -> None:
        """Keep records; ``page_size`` is the records per page (the service's is 1000)."""
        self.now = now
        self.page_size = page_size
        self.records: dict[str, dict[str, Any]] = {}
        self.attestations = Attestations()
        self._cursors = Cursors()

    def load_examples(self) -> None:
        """Store the official examples' records."""
        for record in example_states():
            self.records[state_key(record)] = record

    def clear(self) -> None:
        """Forget every record, attestation and paging snapshot."""
        self.records.clear()
        self.attestations.clear()
        self._cursors.clear()

    def put(self, given: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a record (completed by ``complete_state``); returns it and whether it is new."""
        record = complete_state(given, self.now())
        key = state_key(record)
        created = key not in self.records
        self.records[key] = record
        return copy.deepcopy(record), created

    def set_compliance(
        self, resource_id: str, assignment_id: str, state: str, reference_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Re-evaluate a resource under an assignment: new state, new timestamp; KeyError."""
        changed = []
        for record in self.records.values():
            same = (
                str(record["resourceId"]).lower() == resource_id.lower()
                and str(record["policyAssignmentId"]).lower() == assignment_id.lower()
                and reference_id in (None, record.get("policyDefinitionReferenceId"))
            )
            if same:
                stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
                compliant = state == "Compliant"
                record.update(complianceState=state, isCompliant=compliant, timestamp=stamp)
                changed.append(copy.deepcopy(record))
        if not changed:
            raise KeyError(f"no policy state of {resource_id!r} under {assignment_id!r}")
        return changed

    def query(
        self,
        scope: dict[str, str],
        filter_text: str | None,
        top: str | None,
        skip_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the records in ``scope`` that match; ``ODataError`` for bad options.

        ``scope`` maps record fields (``subscriptionId``, ``resourceGroup``, ``resourceId``)
        to the values the path names.
        """
        if skip_token:
            keys, token = self._cursors.resume(skip_token)
        else:
            clauses = parse_policy_filter(filter_text)
            limit = parse_top(top, len(self.records) or 1, None) if top != "0" else 0
            wanted = [Comparison(field, False, value) for field, value in scope.items()]
            matching = [
                key
                for key, record in sorted(self.records.items())
                if all(clause.matches(record) for clause in (*wanted, *clauses))
            ]
            keys, token = self._cursors.page(matching[:limit], self.page_size)
        return [copy.deepcopy(self.records[k]) for k in keys if k in self.records], token
