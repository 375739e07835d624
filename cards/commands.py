"""The commands a conversation can type to Warden: one table for help text and for parsing.

:data:`COMMANDS` is the single source: :func:`cards.common.help_card` lists it, and the bot's
router imports it to match what was typed (by :attr:`Command.name`, then an argument from
:attr:`Command.choices`) and to suggest the closest command for a typo. Adding a command here
makes it appear in help; help can never describe a command the router does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.models import Severity
from core.roles import Role

SEVERITY_CHOICES: tuple[str, ...] = tuple(member.value.lower() for member in Severity)
"""The words ``subscribe incidents`` accepts, least severe first; ``Severity.parse`` reads each."""


SOURCE_CHOICES: tuple[str, ...] = ("sentinel", "defender")
"""The incident sources ``subscribe incidents … from <source> [and <source>]`` names."""


@dataclass(frozen=True)
class Command:
    """One command: the words that name it, how to type it, and what it does in one line."""

    name: str
    """The words that start the command, lower-case, single-spaced (``subscribe incidents``)."""

    usage: str
    """How to type it, any optional argument in brackets (``subscribe incidents [low|…]``)."""

    summary: str
    """What it does, one sentence for the help card."""

    choices: tuple[str, ...] = ()
    """The words accepted as its one optional argument; empty when it takes none."""

    sources: tuple[str, ...] = ()
    """Words accepted after a trailing ``from`` (``from defender``, ``from sentinel and
    defender``); the router gives them, space-joined, as ``values["from"]``."""

    pattern: str | None = None
    """A regular expression its arguments must match in full (named groups are the values),
    for commands whose arguments are not one word from ``choices``."""

    role: Role | None = None
    """The Warden role a person needs to run it; None: anyone in the conversation."""

    menu: bool = True
    """Listed in the Teams command menu (the manifest's command lists take at most
    :data:`MENU_MAX`); help lists every command either way."""


MENU_MAX = 10
"""How many commands a Teams command list may hold (the manifest schema's ``maxItems``)."""

_SCOPE_USAGE = "<subscription id | /subscriptions/<id>/resourceGroups/<group>>"


def _usage(name: str, choices: tuple[str, ...] = ()) -> str:
    """``name`` followed by its optional argument, e.g. ``subscribe incidents [low|high]``."""
    return f"{name} [{'|'.join(choices)}]" if choices else name


_RECORD = r"[a-z]{2,4}\d{7,12}|[a-z][a-z0-9_]{0,9}-[1-9]\d{0,9}"
"""A ServiceNow record number, or a Jira issue key (matched case-insensitively)."""

COMMANDS: tuple[Command, ...] = (
    Command("help", _usage("help"), "Show what I can do."),
    Command(
        "subscribe incidents",
        _usage("subscribe incidents", SEVERITY_CHOICES) + " [from defender]",
        "Post incidents of that severity and above here (default: all severities).",
        SEVERITY_CHOICES,
        sources=SOURCE_CHOICES,
        role=Role.OPERATOR,
    ),
    Command(
        "unsubscribe incidents",
        _usage("unsubscribe incidents"),
        "Stop posting incidents here.",
        role=Role.OPERATOR,
    ),
    Command(
        "subscribe budgets",
        f"subscribe budgets {_SCOPE_USAGE}",
        "Post the Azure budget alerts of a subscription or resource group here.",
        pattern=r"(?P<scope>\S+)",
        role=Role.OPERATOR,
    ),
    Command(
        "unsubscribe budgets",
        f"unsubscribe budgets {_SCOPE_USAGE}",
        "Stop posting that scope's budget alerts here.",
        pattern=r"(?P<scope>\S+)",
        role=Role.OPERATOR,
        menu=False,
    ),
    Command(
        "status",
        _usage("status"),
        "Show this conversation's subscription and delivery.",
    ),
    Command(
        "link",
        "link <incident number> to <record number>",
        "Link an incident whose card is here to an ITSM record (e.g. CHG0030001 or SEC-123).",
        pattern=rf"#?(?P<incident>\d{{1,9}})\s+to\s+(?P<record>{_RECORD})",
        role=Role.RESPONDER,
    ),
    Command(
        "link deployment",
        "link deployment <deployment name> to <change number>",
        "Record that an Azure deployment Warden has seen was made under a change (e.g. "
        "CHG0030001).",
        pattern=r"(?P<deployment>[a-z0-9][a-z0-9._()-]{0,63})\s+to\s+(?P<record>[a-z]{2,4}\d{7,12})",
        role=Role.RESPONDER,
    ),
    Command(
        "unlink",
        "unlink <incident number> from <record number>",
        "Remove an incident's link to an ITSM record.",
        pattern=rf"#?(?P<incident>\d{{1,9}})\s+from\s+(?P<record>{_RECORD})",
        role=Role.RESPONDER,
    ),
    Command(
        "request evidence",
        "request evidence <requirement id> from <@person or UPN> [due YYYY-MM-DD]",
        "Ask a person for a requirement's compliance evidence; its reviewers decide on it.",
        pattern=(
            r"(?P<requirement>[a-z0-9][a-z0-9.-]*)\s+from"
            r"(?:\s+(?P<person>(?!due\b)\S+))?(?:\s+due\s+(?P<due>\S+))?"
        ),
        role=Role.REVIEWER,
    ),
    Command("whoami", _usage("whoami"), "Show your Warden roles and where each comes from."),
)
"""Every command, in the order help lists them."""

MENU_COMMANDS: tuple[Command, ...] = tuple(command for command in COMMANDS if command.menu)
"""The commands of the Teams command menu (the manifest), in help's order."""


def command_named(name: str) -> Command:
    """The command whose :attr:`Command.name` is ``name``; ``KeyError`` when there is none."""
    for command in COMMANDS:
        if command.name == name:
            return command
    raise KeyError(name)
