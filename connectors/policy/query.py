"""The OData options of Policy Insights' queryResults (``$filter``, ``$top``).

The swagger says only "OData filter expression"; Warden builds the plain form the
service documents: ``<field> eq '<value>'`` comparisons joined by ``and``, string literals
with their single quotes doubled. ``$top`` caps the records a whole query returns (the
service pages them itself); it is checked before any request.
"""

from __future__ import annotations

MAX_TOP = 1000
"""The largest ``$top`` Warden asks for (beyond it, walk every page without a cap)."""


def _quoted(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def states_query(
    *,
    compliance_state: str | None = None,
    policy_definition_id: str | None = None,
    policy_assignment_id: str | None = None,
    resource_id: str | None = None,
    top: int | None = None,
) -> dict[str, str]:
    """The query options selecting records whose fields equal every value given."""
    if top is not None and not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be from 1 to {MAX_TOP}")
    fields = {
        "complianceState": compliance_state,
        "policyDefinitionId": policy_definition_id,
        "policyAssignmentId": policy_assignment_id,
        "resourceId": resource_id,
    }
    clauses = []
    for name, value in fields.items():
        if value is None:
            continue
        if not value.strip():
            raise ValueError(f"{name} must not be empty")
        clauses.append(f"{name} eq {_quoted(value)}")
    query: dict[str, str] = {}
    if clauses:
        query["$filter"] = " and ".join(clauses)
    if top is not None:
        query["$top"] = str(top)
    return query
