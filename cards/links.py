"""The ITSM part of an incident card: the linked records, the buttons that link more, and
the configuration items (CMDB CIs) matching the incident's entities.

Each standing link is one FactSet row (``ServiceNow CHG0030001`` → ``Assess · P3``) and an
*Open* button; with triage, *Link to ServiceNow…* (a record number, or a search where the
client can type ahead) and *Create change* sit beside the triage buttons. Each CI is one
FactSet row (``web-prd-01`` → ``Linux Server · Production · David Loo``), the first
:data:`MAX_CIS`, then ``+N more``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cards.elements import JSON, adaptive_card, execute, fact_set, open_url, safe_url, text_block
from cards.text import inert
from cards.verbs import CardVerb
from core.costs import ResourceCost
from core.itsm import ConfigurationItem, IncidentLink, ItsmSystem

SYSTEM_NAMES = {system: system.display_name for system in ItsmSystem}
"""How each ITSM system is named on a card."""

MAX_LINK_BUTTONS = 2
"""*Open* buttons drawn for links at most (the card's action row is short)."""

SEARCH_DATASET = "warden.itsm.records"
"""The dataset a typeahead search asks the bot for (``application/search`` invokes)."""

MAX_CIS = 5
"""Configuration items listed on a card at most (the rest are counted)."""

CI_CLASSES = {
    "cmdb_ci_appl": "Application",
    "cmdb_ci_computer": "Computer",
    "cmdb_ci_database": "Database",
    "cmdb_ci_ip_router": "IP Router",
    "cmdb_ci_ip_switch": "IP Switch",
    "cmdb_ci_linux_server": "Linux Server",
    "cmdb_ci_server": "Server",
    "cmdb_ci_vm_instance": "Virtual Machine Instance",
    "cmdb_ci_win_server": "Windows Server",
}
"""How common CI classes are labelled (others: the class without ``cmdb_ci_``, in words)."""

AZURE_TYPES = {
    "microsoft.compute/virtualmachines": "Azure VM",
    "microsoft.compute/disks": "Azure disk",
    "microsoft.network/networkinterfaces": "Azure NIC",
    "microsoft.network/publicipaddresses": "Azure public IP",
    "microsoft.storage/storageaccounts": "Azure storage account",
    "microsoft.web/sites": "Azure App Service",
    "microsoft.sql/servers/databases": "Azure SQL database",
    "microsoft.keyvault/vaults": "Azure Key Vault",
}
"""How common Azure resource types (CIs from the Resource Graph sync) are labelled."""


def link_rows(links: Sequence[IncidentLink]) -> list[JSON]:
    """The heading and FactSet of the incident's links; nothing without a link."""
    if not links:
        return []
    facts = [(f"{SYSTEM_NAMES[link.system]} {link.external_id}", _state(link)) for link in links]
    return [
        text_block("Linked records", weight="bolder", spacing="medium"),
        fact_set(facts, spacing="small"),
    ]


COST_DAYS = 30
"""The days a cost shown on a card covers (``Cost (30 days): 12.34 EUR``), today included."""


def cost_text(cost: ResourceCost) -> str:
    """``Cost (30 days): 1,234.56 EUR``: what a resource cost over :data:`COST_DAYS`."""
    return f"Cost ({COST_DAYS} days): {inert(cost.shown())}"


def ci_rows(
    cis: Sequence[ConfigurationItem], costs: Mapping[str, ResourceCost] | None = None
) -> list[JSON]:
    """The heading and FactSet of the CIs (name · class · env · owner, and what the CI cost
    when ``costs``, by lower-cased CI id, knows it), the first :data:`MAX_CIS`, then
    ``+N more``; nothing without a CI."""
    if not cis:
        return []
    known = costs or {}
    facts = [(inert(ci.name), _ci_line(ci, known.get(ci.ci_id.lower()))) for ci in cis[:MAX_CIS]]
    parts = [
        text_block("Configuration items", weight="bolder", spacing="medium"),
        fact_set(facts, spacing="small"),
    ]
    if len(cis) > MAX_CIS:
        more = f"+{len(cis) - MAX_CIS} more"
        parts.append(text_block(more, isSubtle=True, size="small", spacing="none"))
    return parts


def ci_class(kind: str) -> str:
    """The label of a CI class: ``cmdb_ci_linux_server`` → ``Linux Server``."""
    known = CI_CLASSES.get(kind.lower()) or AZURE_TYPES.get(kind.lower())
    if known is not None:
        return known
    if "/" in kind:
        return inert(f"Azure {kind.rsplit('/', 1)[-1]}")
    words = kind.lower().removeprefix("cmdb_ci_").replace("_", " ").strip()
    return inert(words.capitalize()) or "Configuration item"


def _ci_line(ci: ConfigurationItem, cost: ResourceCost | None = None) -> str:
    """``Linux Server · Production · David Loo``: what is known of the CI (and its cost)."""
    parts = [ci_class(ci.type), inert(ci.env or ""), inert(ci.owner or "")]
    if cost is not None:
        parts.append(cost_text(cost))
    return " \u00b7 ".join(part for part in parts if part)


def link_buttons(links: Sequence[IncidentLink]) -> list[JSON]:
    """An *Open CHG…* button per link (the first few) whose URL is safe."""
    buttons = []
    for link in links[:MAX_LINK_BUTTONS]:
        url = safe_url(link.url)
        if url is not None:
            buttons.append(open_url(f"Open {link.external_id}", url))
    return buttons


_RECORD_LABELS = {
    ItsmSystem.SERVICENOW: ("ServiceNow record number", "CHG0030001 or INC0010001"),
    ItsmSystem.JSM: ("Jira issue key", "SEC-123"),
}
"""Per system: the label and placeholder of the record box."""


def record_box(systems: Sequence[ItsmSystem]) -> tuple[str, str]:
    """The label and placeholder of a box taking a record of ``systems``."""
    if len(systems) == 1:
        return _RECORD_LABELS[systems[0]]
    return "ServiceNow number or Jira issue key", "CHG0030001 or SEC-123"


def itsm_buttons(
    incident_key: str,
    version: str,
    *,
    can_create: bool = True,
    systems: Sequence[ItsmSystem] = (ItsmSystem.SERVICENOW,),
) -> list[JSON]:
    """*Link to ServiceNow…* (or the one system connected; *Link to a record…* with
    several) and, unless linked already, *Create change*.

    The record is typed (every client) or found with a typeahead search (clients that
    support ``Data.Query``; elsewhere the search box stays empty), so the card works in both.
    """
    data = {"incident": incident_key, "version": version}
    title = f"Link to {SYSTEM_NAMES[systems[0]]}\u2026" if len(systems) == 1 else None
    label, placeholder = record_box(systems)
    typed = {
        "type": "Input.Text",
        "id": "record",
        "label": label,
        "placeholder": placeholder,
        "maxLength": 20,
    }
    search = {
        "type": "Input.ChoiceSet",
        "id": "pick",
        "label": "…or find it",
        "choices": [],
        "choices.data": {"type": "Data.Query", "dataset": SEARCH_DATASET},
        "placeholder": "Words from its number or description",
    }
    buttons: list[JSON] = [
        {
            "type": "Action.ShowCard",
            "title": title or "Link to a record\u2026",
            "card": {
                "type": "AdaptiveCard",
                "body": [typed, search],
                "actions": [execute("Link", CardVerb.LINK, data)],
            },
        }
    ]
    if can_create:
        buttons.append(execute("Create change", CardVerb.CREATE_CHANGE, data))
    return buttons


def _state(link: IncidentLink) -> str:
    """``Assess · P3``: the record's state and priority as its system shows them."""
    parts = [inert(link.status) or "Unknown state"]
    if link.priority is not None:
        parts.append(f"P{link.priority}")
    return " \u00b7 ".join(parts)


def linked_card(number: int | None, link: IncidentLink, *, linked: bool, already: bool) -> JSON:
    """The answer to ``link``/``unlink``: what is now linked (or no longer), with its state."""
    incident = f"#{number}" if number is not None else "The incident"
    name = f"{SYSTEM_NAMES[link.system]} {link.external_id}"
    if linked:
        heading = (
            f"{incident} was already linked to {name}"
            if already
            else f"Linked {incident} to {name}"
        )
        detail = f"{name}: {_state(link)}. The incident's cards show the link"
        detail += "." if already else "; Sentinel gets a comment and a label."
    else:
        heading = f"Unlinked {incident} from {name}"
        detail = "The incident's cards no longer show it; Sentinel gets a comment."
    body: list[JSON] = [
        text_block(inert(heading), weight="bolder", color="good", size="medium"),
        text_block(inert(detail)),
    ]
    url = safe_url(link.url)
    actions = [open_url(f"Open {link.external_id}", url)] if url is not None and linked else []
    return adaptive_card(body, actions)


def deployment_linked_card(deployment: str, group: str, change: str, *, already: bool) -> JSON:
    """The answer to ``link deployment``: the deployment (and its resource group) is linked
    to the change, or already was."""
    heading = (
        f"{deployment} was already linked to {change}"
        if already
        else f"Linked deployment {deployment} to {change}"
    )
    where = group.rsplit("/", 1)[-1]
    detail = f"Resource group {where}. The CMDB shows the link on the CIs it deployed."
    body: list[JSON] = [
        text_block(inert(heading), weight="bolder", color="good", size="medium"),
        text_block(inert(detail)),
    ]
    return adaptive_card(body, [])
