"""Example data of the ServiceNow sandbox, so it is useful out of the box.

Users (ServiceNow's demo names), assignment groups, a handful of configuration items of
several classes (servers, a VM instance, a database, an application) with owners, IP
addresses, FQDNs and environments, and a few change requests and incidents that reference
them. Everything is created as the system would, through ``ServiceNowSandbox.create``.
"""

from __future__ import annotations

from typing import Protocol

USERS = (
    ("admin", "System Administrator", "admin@example.com", "Administrator"),
    ("david.loo", "David Loo", "david.loo@example.com", "Change Manager"),
    ("beth.anglin", "Beth Anglin", "beth.anglin@example.com", "Service Desk Analyst"),
    ("abel.tuter", "Abel Tuter", "abel.tuter@example.com", "Database Administrator"),
    ("itil", "ITIL User", "itil@example.com", "IT Technician"),
)
"""(user_name, name, email, title) of the seeded users."""

GROUPS = (
    ("Service Desk", "beth.anglin"),
    ("Security Operations", "david.loo"),
    ("Database", "abel.tuter"),
    ("CAB Approval", "david.loo"),
)
"""(name, manager user_name) of the seeded groups."""

CIS = (
    ("cmdb_ci_linux_server", "web-prd-01", "10.20.1.11", "Production", "david.loo"),
    ("cmdb_ci_linux_server", "web-prd-02", "10.20.1.12", "Production", "david.loo"),
    ("cmdb_ci_win_server", "dc-prd-01", "10.20.0.5", "Production", "beth.anglin"),
    ("cmdb_ci_vm_instance", "build-agent-07", "10.30.4.7", "Development", "itil"),
    ("cmdb_ci_database", "sqldb-finance", "10.20.2.40", "Production", "abel.tuter"),
    ("cmdb_ci_appl", "warden-demo-app", "10.40.0.9", "Test", "david.loo"),
)
"""(class, name, IP address, environment, owner user_name) of the seeded CIs."""


class Creator(Protocol):
    """What seeding needs: ``create`` and ``find_by`` of the sandbox."""

    def create(self, table: str, fields: dict[str, str]) -> dict[str, str]:
        """Insert a record as the system would."""

    def find_by(self, table: str, field: str, value: str) -> dict[str, str] | None:
        """Return the first record of a table with this field value."""


def _sys_id(sandbox: Creator, table: str, field: str, value: str) -> str:
    """Return the sys_id of a seeded record (KeyError if missing)."""
    found = sandbox.find_by(table, field, value)
    if found is None:
        raise KeyError(f"no {table} with {field}={value}")
    return found["sys_id"]


def seed_examples(sandbox: Creator, api_user: str) -> None:
    """Create the example users, groups, CIs, change requests and incidents."""
    people = [*USERS, (api_user, "Warden Integration", "", "Integration account")]
    for user_name, name, email, title in people:
        first, _, last = name.partition(" ")
        sandbox.create(
            "sys_user",
            {"user_name": user_name, "name": name, "first_name": first, "last_name": last}
            | {"email": email, "title": title},
        )
    user = {u: _sys_id(sandbox, "sys_user", "user_name", u) for u, *_ in people}
    for name, manager in GROUPS:
        sandbox.create("sys_user_group", {"name": name, "manager": user[manager]})
    group = {name: _sys_id(sandbox, "sys_user_group", "name", name) for name, _ in GROUPS}
    for cls, name, ip, environment, owner in CIS:
        sandbox.create(
            "cmdb_ci",
            {"sys_class_name": cls, "name": name, "ip_address": ip, "fqdn": f"{name}.contoso.com"}
            | {"environment": environment, "used_for": environment, "owned_by": user[owner]}
            | {"support_group": group["Service Desk"]},
        )
    _seed_tasks(sandbox, user, group)


def _seed_tasks(sandbox: Creator, user: dict[str, str], group: dict[str, str]) -> None:
    """Create the example change requests and incidents."""
    web = _sys_id(sandbox, "cmdb_ci", "name", "web-prd-01")
    database = _sys_id(sandbox, "cmdb_ci", "name", "sqldb-finance")
    sandbox.create(
        "change_request",
        {"short_description": "Patch web-prd-01 (kernel CVE)", "cmdb_ci": web}
        | {"assignment_group": group["CAB Approval"], "requested_by": user["david.loo"]}
        | {"state": "-3", "approval": "requested", "start_date": "2026-01-10 09:00:00"}
        | {"end_date": "2026-01-10 11:00:00", "work_notes": "Window agreed with the web team."},
    )
    sandbox.create(
        "change_request",
        {"short_description": "Rotate sqldb-finance credentials", "cmdb_ci": database}
        | {"assignment_group": group["Database"], "assigned_to": user["abel.tuter"]}
        | {"state": "-1", "approval": "approved", "type": "standard"},
    )
    sandbox.create(
        "incident",
        {"short_description": "Suspicious sign-ins on dc-prd-01", "priority": "2"}
        | {"caller_id": user["beth.anglin"], "assignment_group": group["Security Operations"]}
        | {"impact": "2", "urgency": "1", "work_notes": "Escalated from the service desk."},
    )
    sandbox.create(
        "incident",
        {"short_description": "Build agent disk full", "state": "2"}
        | {"caller_id": user["itil"], "assigned_to": user["beth.anglin"]}
        | {"assignment_group": group["Service Desk"]},
    )
