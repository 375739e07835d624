"""The requirement catalog: which controls need evidence, who owns and who reviews it.

Read from YAML (``WARDEN_REQUIREMENTS_FILE``; see ``docs/examples/requirements.yaml``) and
validated once at start. A bad catalog raises ``SettingsError`` whose every line reads
``FILE:LINE:COLUMN: where: what is wrong``; unknown keys are refused, so a typo never passes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from core.errors import SettingsError
from core.yaml_positions import Positioned, YamlProblem, load_positioned

VARIABLE = "WARDEN_REQUIREMENTS_FILE"
MAX_PROBLEMS = 20

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
UPN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
CHANNEL = re.compile(r"19:[A-Za-z0-9_-]+@thread\.(tacv2|skype)")
REQUIREMENT_ID = re.compile(r"[A-Z][A-Z0-9]*([-.][A-Z0-9]+)*")
_NAME = r"[^/\s]+"
_SCOPE = (
    rf"/subscriptions/{GUID.pattern}(/resourceGroups/{_NAME})?"
    rf"|/providers/Microsoft\.Management/managementGroups/{_NAME}"
)
DEFINITION_ID = re.compile(
    rf"(/subscriptions/{GUID.pattern}|/providers/Microsoft\.Management/managementGroups/{_NAME})?"
    rf"/providers/Microsoft\.Authorization/policyDefinitions/{_NAME}",
    re.I,
)
ASSIGNMENT_ID = re.compile(
    rf"({_SCOPE})/providers/Microsoft\.Authorization/policyAssignments/{_NAME}", re.I
)


class EvidenceKind(StrEnum):
    """What an owner may hand in as evidence."""

    FILE = "file"
    LINK = "link"
    ATTESTATION = "attestation"


class PrincipalKind(StrEnum):
    """Who a catalog entry names: a person (UPN), an Entra group, or a Teams channel."""

    USER = "user"
    GROUP = "group"
    CHANNEL = "channel"


class Principal(BaseModel):
    """A person, group or channel, told apart by the syntax of its id."""

    model_config = ConfigDict(frozen=True)

    kind: PrincipalKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"


def _principal(*allowed: PrincipalKind) -> BeforeValidator:
    """A validator turning text into a ``Principal`` of one of the ``allowed`` kinds."""
    names = {
        PrincipalKind.USER: "a UPN (name@domain)",
        PrincipalKind.GROUP: "an Entra group object id (a GUID)",
        PrincipalKind.CHANNEL: "a Teams channel id (19:…@thread.tacv2)",
    }
    wanted = " or ".join(names[kind] for kind in allowed)

    def parse(value: Any) -> Any:
        if isinstance(value, Principal):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be {wanted}, as text")
        text = value.strip()
        if PrincipalKind.CHANNEL in allowed and CHANNEL.fullmatch(text):
            return Principal(kind=PrincipalKind.CHANNEL, id=text)
        if PrincipalKind.GROUP in allowed and GUID.fullmatch(text):
            return Principal(kind=PrincipalKind.GROUP, id=text.lower())
        if PrincipalKind.USER in allowed and UPN.fullmatch(text):
            return Principal(kind=PrincipalKind.USER, id=text.lower())
        raise ValueError(f"{text!r} is not {wanted}")

    return BeforeValidator(parse)


def _arm_id(pattern: re.Pattern[str], what: str, example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not {what} (e.g. {example})")
        return value.strip()

    return AfterValidator(check)


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{str(value)!r} is listed twice")
        seen.add(value)
    return values


DefinitionId = Annotated[
    StrictStr,
    _arm_id(
        DEFINITION_ID,
        "an Azure Policy definition id",
        "/providers/Microsoft.Authorization/policyDefinitions/<name>",
    ),
]
AssignmentId = Annotated[
    StrictStr,
    _arm_id(
        ASSIGNMENT_ID,
        "an Azure Policy assignment id",
        "/subscriptions/<id>/providers/Microsoft.Authorization/policyAssignments/<name>",
    ),
]
Days = list[Annotated[StrictInt, Field(ge=0)]]
Owner = Annotated[Principal, _principal(PrincipalKind.USER, PrincipalKind.GROUP)]
Channel = Annotated[Principal, _principal(PrincipalKind.CHANNEL)]
Group = Annotated[Principal, _principal(PrincipalKind.GROUP)]
Escalation = Annotated[
    Principal, _principal(PrincipalKind.USER, PrincipalKind.GROUP, PrincipalKind.CHANNEL)
]


class Requirement(BaseModel):
    """One control that needs evidence, and how its evidence is collected and reviewed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: StrictStr = Field(
        max_length=64,
        description="Stable id: upper-case letters and digits in parts joined by `-` or `.`.",
    )
    title: StrictStr = Field(min_length=1, max_length=200)
    guidance: StrictStr = Field(min_length=1, description="What good evidence looks like.")
    policy_definitions: Annotated[list[DefinitionId], AfterValidator(_unique)] = Field(
        default_factory=list, description="Azure Policy definition ids this requirement covers."
    )
    policy_assignments: Annotated[list[AssignmentId], AfterValidator(_unique)] = Field(
        default_factory=list, description="Azure Policy assignment ids this requirement covers."
    )
    evidence: Annotated[list[EvidenceKind], AfterValidator(_unique)] = Field(
        min_length=1, description="The kinds of evidence accepted."
    )
    owner: Owner = Field(description="Who provides the evidence: a UPN or an Entra group id.")
    reviewers: Annotated[list[Group], AfterValidator(_unique)] = Field(
        min_length=1, description="Entra groups whose members may approve."
    )
    review_channel: Channel | None = Field(
        None,
        description="The Teams channel where the reviewers' card goes (Warden installed in its "
        "team); default: where the request was asked for, or `WARDEN_EVIDENCE_CHANNEL`.",
    )
    approvals: StrictInt = Field(1, ge=1, le=10, description="Distinct reviewers who approve.")
    due_days: StrictInt = Field(ge=1, le=3650, description="Days from request to due date.")
    reminders: Annotated[Days, AfterValidator(_unique)] = Field(
        default_factory=list, description="Days before the due date to remind the owner."
    )
    escalation: Escalation | None = Field(
        None, description="Who is told when evidence is overdue: a UPN, a group or a channel."
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not REQUIREMENT_ID.fullmatch(value):
            raise ValueError(
                f"{value!r}: use upper-case letters and digits in parts joined by '-' or '.' "
                "(e.g. ISO27001-A.8.5)"
            )
        return value

    @field_validator("reminders")
    @classmethod
    def _check_reminders(cls, value: list[int], info: ValidationInfo) -> list[int]:
        due = info.data.get("due_days")
        late = [day for day in value if due is not None and day >= due]
        if late:
            raise ValueError(f"{late[0]} days before the due date is not after the request")
        return sorted(value, reverse=True)


class CatalogFile(BaseModel):
    """The catalog file's top level."""

    model_config = ConfigDict(extra="forbid")

    requirements: list[Requirement] = Field(min_length=1)


@dataclass(frozen=True)
class Catalog:
    """The validated requirements, in file order, looked up by id or by Azure Policy id."""

    requirements: tuple[Requirement, ...]
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.requirements)

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def get(self, requirement_id: str) -> Requirement | None:
        """The requirement with this id, or None."""
        return next((r for r in self.requirements if r.id == requirement_id), None)

    def for_definition(self, definition_id: str) -> list[Requirement]:
        """The requirements covering this policy definition (ARM ids compare case-blind)."""
        wanted = definition_id.strip().lower()
        return [r for r in self.requirements if wanted in _lower(r.policy_definitions)]

    def for_assignment(self, assignment_id: str) -> list[Requirement]:
        """The requirements covering this policy assignment (ARM ids compare case-blind)."""
        wanted = assignment_id.strip().lower()
        return [r for r in self.requirements if wanted in _lower(r.policy_assignments)]

    def matching(
        self, definition_id: str | None = None, assignment_id: str | None = None
    ) -> list[Requirement]:
        """The requirements covering a non-compliance: its definition or its assignment."""
        found = (self.for_definition(definition_id) if definition_id else []) + (
            self.for_assignment(assignment_id) if assignment_id else []
        )
        return [r for r in self.requirements if r in found]


def _lower(values: list[str]) -> set[str]:
    return {value.lower() for value in values}


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog at ``path``; ``SettingsError`` naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{VARIABLE}: {path}: cannot be read ({exc})") from None
    return parse_catalog(text, path)


def parse_catalog(text: str, path: Path) -> Catalog:
    """Validate catalog ``text`` read from ``path`` (named in errors)."""
    try:
        positioned = load_positioned(text)
    except YamlProblem as exc:
        _fail(path, [(exc.position.line, exc.position.column, exc.message)])
    if positioned.data is None:
        _fail(path, [(1, 1, "the file is empty: it needs a 'requirements:' list")])
    problems = _duplicate_ids(positioned)
    try:
        parsed = CatalogFile.model_validate(positioned.data)
    except ValidationError as exc:
        problems += [_problem(positioned, err) for err in exc.errors()]
    if problems:
        _fail(path, problems)
    return Catalog(tuple(parsed.requirements), path)


Problem = tuple[int, int, str]


def _fail(path: Path, problems: list[Problem]) -> NoReturn:
    lines = [f"{path}:{line}:{column}: {message}" for line, column, message in sorted(problems)]
    if len(lines) > MAX_PROBLEMS:
        lines = [*lines[:MAX_PROBLEMS], f"… and {len(lines) - MAX_PROBLEMS} more"]
    raise SettingsError(f"invalid requirements catalog ({VARIABLE}):\n  " + "\n  ".join(lines))


def _duplicate_ids(positioned: Positioned) -> list[Problem]:
    data = positioned.data
    items = data.get("requirements") if isinstance(data, dict) else None
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, item in enumerate(items if isinstance(items, list) else []):
        rid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(rid, str):
            continue
        where = positioned.locate(("requirements", index, "id"))
        if rid in first:
            message = f"requirement {index + 1}, id: {rid!r} is already used on line {first[rid]}"
            problems.append((where.line, where.column, message))
        else:
            first[rid] = where.line
    return problems


def _problem(positioned: Positioned, error: ErrorDetails) -> Problem:
    loc = tuple(error["loc"])
    where = positioned.locate(loc, key=error["type"] == "extra_forbidden")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = f"missing {loc[-1]!r}"
        loc = loc[:-1]
    elif error["type"] == "extra_forbidden":
        message = _unknown_key(str(loc[-1]), loc[:-1])
    elif loc == ("requirements",) and error["type"] == "too_short":
        message = "the catalog has no requirements"
    elif error["type"] == "model_type":
        message = "should be a mapping of keys to values"
    elif error["type"] == "string_type" and isinstance(error["input"], bool):
        message += " (YAML reads yes/no/on/off as true/false: put it in quotes)"
    return (where.line, where.column, f"{_describe(positioned, loc)}: {message}")


def _unknown_key(key: str, parent: tuple[int | str, ...]) -> str:
    model = Requirement if parent and isinstance(parent[-1], int) else CatalogFile
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return f"unknown key {key!r} ({hint})"


def _describe(positioned: Positioned, loc: tuple[int | str, ...]) -> str:
    """``requirement 3 (ISO-X), reminders, item 2`` for a pydantic location."""
    if len(loc) < 2 or loc[0] != "requirements" or not isinstance(loc[1], int):
        return ", ".join(str(part) for part in loc) or "catalog"
    parts = [f"requirement {loc[1] + 1}"]
    items = positioned.data.get("requirements") if isinstance(positioned.data, dict) else None
    item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        parts[0] += f" ({item['id']})"
    parts += [f"item {p + 1}" if isinstance(p, int) else str(p) for p in loc[2:]]
    return ", ".join(parts)
