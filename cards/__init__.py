"""Pure card builders: domain model in, Adaptive Card 1.5 JSON (a ``dict``) out.

Cards import only :mod:`core` and the standard library, read no clock and do no I/O.
"""

from cards.commands import COMMANDS, Command, command_named
from cards.common import (
    error_card,
    help_card,
    status_card,
    subscribed_card,
    unsubscribed_card,
    welcome_card,
)
from cards.incident import incident_card
from cards.verbs import CardVerb

__all__ = [
    "COMMANDS",
    "CardVerb",
    "Command",
    "command_named",
    "error_card",
    "help_card",
    "incident_card",
    "status_card",
    "subscribed_card",
    "unsubscribed_card",
    "welcome_card",
]
