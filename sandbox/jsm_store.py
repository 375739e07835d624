"""Issues, workflows and comments of the JSM sandbox, as Jira Cloud shapes them.

An issue is ``{"id", "key", "fields": {...}}`` with Jira's field shapes (``status`` with its
``statusCategory``, ``priority`` and ``issuetype`` by name and id, date-times as
``2026-11-25T09:30:00.000+0000``). Each issue type has its own workflow, and the *same*
transition has a different id in each (as on a real site), so a client has to find a
transition by its name. Comments must be Atlassian Document Format documents.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Issue = dict[str, Any]

STATUSES = {
    "Waiting for support": ("10001", "new", "To Do"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "Pending": ("10002", "indeterminate", "In Progress"),
    "Resolved": ("5", "done", "Done"),
    "Canceled": ("10003", "done", "Done"),
}
"""Status name → (id, statusCategory key, statusCategory name)."""

PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
ISSUE_TYPES = {
    "Incident": "10100",
    "Change": "10101",
    "Problem": "10102",
    "Service Request": "10103",
}
_TRANSITIONS = (  # name, target status, offset of its id in each workflow
    ("In Progress", "In Progress", 1),
    ("Pending", "Pending", 2),
    ("Resolve", "Resolved", 3),
    ("Cancel", "Canceled", 4),
    ("Reopen", "Waiting for support", 5),
)
_WORKFLOW_BASE = {"Incident": 10, "Change": 100, "Problem": 200, "Service Request": 300}


def jira_time(moment: datetime.datetime) -> str:
    """``moment`` as Jira writes date-times: ``2026-11-25T09:30:00.000+0000``."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_jira_time(text: str) -> datetime.datetime:
    """A Jira date-time back into an aware datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def transitions_of(issue: Issue) -> list[dict[str, Any]]:
    """The transitions open to ``issue`` now, shaped as ``GET …/transitions`` lists them."""
    kind = issue["fields"]["issuetype"]["name"]
    current = issue["fields"]["status"]["name"]
    done = STATUSES[current][1] == "done"
    base = _WORKFLOW_BASE[kind]
    found = []
    for name, target, offset in _TRANSITIONS:
        if (name == "Reopen") != done or target == current:
            continue
        found.append(
            {
                "id": str(base + offset),
                "name": name,
                "to": status_field(target),
                "hasScreen": False,
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
            }
        )
    return found


def status_field(name: str) -> dict[str, Any]:
    """The ``status`` field of an issue in status ``name``."""
    status_id, category, category_name = STATUSES[name]
    return {
        "name": name,
        "id": status_id,
        "statusCategory": {"key": category, "name": category_name},
    }


def is_document(body: Any) -> bool:
    """True when ``body`` is an ADF document: ``doc`` version 1 with block content."""
    if not isinstance(body, dict) or body.get("type") != "doc" or body.get("version") != 1:
        return False
    content = body.get("content")
    return isinstance(content, list) and all(
        isinstance(node, dict) and isinstance(node.get("type"), str) for node in content
    )


def document_text(body: dict[str, Any]) -> str:
    """The plain text of an ADF document (paragraphs on their own lines)."""
    lines = []
    for block in body.get("content", []):
        parts = [n.get("text", "") for n in block.get("content", []) if isinstance(n, dict)]
        lines.append("".join(str(p) for p in parts))
    return "\n".join(lines)


@dataclass
class IssueStore:
    """Every issue of the site by id, keys numbered per project, comments per issue."""

    now: Callable[[], datetime.datetime]
    issues: dict[str, Issue] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _next_id: int = 10000
    _next_number: dict[str, int] = field(default_factory=dict)

    def create(
        self,
        project: str,
        summary: str,
        *,
        kind: str = "Service Request",
        priority: str = "Medium",
        description: str = "",
        labels: list[str] | None = None,
        status: str = "Waiting for support",
        reporter: str = "warden@example.com",
    ) -> Issue:
        """A new issue, numbered next in ``project``; returned as stored."""
        self._next_id += 1
        number = self._next_number.get(project, 0) + 1
        self._next_number[project] = number
        stamp = jira_time(self.now())
        issue: Issue = {
            "id": str(self._next_id),
            "key": f"{project}-{number}",
            "fields": {
                "summary": summary,
                "description": description,
                "status": status_field(status),
                "priority": {"name": priority, "id": PRIORITIES[priority]},
                "issuetype": {"name": kind, "id": ISSUE_TYPES[kind]},
                "project": {"key": project},
                "labels": list(labels or []),
                "created": stamp,
                "updated": stamp,
                "reporter": {"emailAddress": reporter},
            },
        }
        self.issues[issue["id"]] = issue
        self.comments[issue["id"]] = []
        return issue

    def get(self, id_or_key: str) -> Issue | None:
        """The issue with this id or key (keys compare case-insensitively)."""
        if id_or_key in self.issues:
            return self.issues[id_or_key]
        wanted = id_or_key.upper()
        return next((i for i in self.issues.values() if i["key"] == wanted), None)

    def touch(self, issue: Issue) -> None:
        """Bump ``updated`` to now."""
        issue["fields"]["updated"] = jira_time(self.now())

    def transition(self, issue: Issue, transition_id: str) -> bool:
        """Apply transition ``transition_id``; False when it is not open to the issue."""
        for item in transitions_of(issue):
            if item["id"] == transition_id:
                issue["fields"]["status"] = copy.deepcopy(item["to"])
                self.touch(issue)
                return True
        return False

    def comment(self, issue: Issue, body: dict[str, Any], author: str) -> dict[str, Any]:
        """Append a comment (an ADF document) and return it as the API shows it."""
        stamp = jira_time(self.now())
        made = {
            "id": str(10000 + sum(len(c) for c in self.comments.values()) + 1),
            "author": {"emailAddress": author},
            "body": copy.deepcopy(body),
            "created": stamp,
            "updated": stamp,
        }
        self.comments[issue["id"]].append(made)
        self.touch(issue)
        return made

    def clear(self) -> None:
        """Forget every issue and comment."""
        self.issues.clear()
        self.comments.clear()
        self._next_id = 10000
        self._next_number.clear()
