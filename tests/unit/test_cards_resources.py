"""Specification of the resources part of the evidence cards: Azure CIs and their costs."""

from __future__ import annotations

from typing import Any

from cards.evidence import owner_card, reviewers_card
from cards.resources import ResourceFacts
from core.costs import ResourceCost
from core.store.evidence import RequestRecord
from tests.unit.evidence_card_samples import (
    ACCOUNT,
    NAMES,
    POLICY_RESOURCES,
    REQUIREMENT,
    VM,
    request,
    resource_facts,
)


def all_facts(card: dict[str, Any]) -> dict[str, str]:
    """Every FactSet row of ``card`` as ``{title: value}``."""
    found: dict[str, str] = {}
    for node in card["body"]:
        if node.get("type") == "FactSet":
            found.update({fact["title"]: fact["value"] for fact in node["facts"]})
    return found


def texts(card: dict[str, Any]) -> list[str]:
    """The text of every TextBlock in ``card``'s body."""
    return [node["text"] for node in card["body"] if node.get("type") == "TextBlock"]


def policy_record() -> RequestRecord:
    """An open policy request naming a VM, its disk and a storage account."""
    return RequestRecord(request(**POLICY_RESOURCES))


def test_owner_card_known_cis_show_class_env_owner_and_cost() -> None:
    """The owner's card lists each resource's CI, with its 30-day cost when known."""
    rows = all_facts(owner_card(policy_record(), REQUIREMENT, NAMES, resources=resource_facts()))
    assert rows["vm-web-01"] == "Azure VM · prod · Olivia Owner · Cost (30 days): 1,234.50 EUR"
    assert rows["vm-web-01-os"] == "Azure disk"
    assert rows["stlogs01"] == "Cost (30 days): 6.25 EUR"


def test_reviewers_card_several_costs_in_one_currency_show_their_total() -> None:
    """The reviewers' card shows the CIs too, and the total of the costs known."""
    card = reviewers_card(policy_record(), REQUIREMENT, NAMES, resources=resource_facts())
    assert "Configuration items" in texts(card)
    assert "Cost (30 days) of these 2 resources: 1,240.75 EUR" in texts(card)


def test_evidence_cards_costs_in_two_currencies_show_no_total() -> None:
    """Costs billed in different currencies are shown each, never added up."""
    facts = ResourceFacts(
        costs={
            VM.lower(): ResourceCost(VM.lower(), 10, "EUR"),
            ACCOUNT.lower(): ResourceCost(ACCOUNT.lower(), 5, "USD"),
        }
    )
    card = owner_card(policy_record(), REQUIREMENT, NAMES, resources=facts)
    assert all_facts(card)["vm-web-01"] == "Cost (30 days): 10.00 EUR"
    assert all_facts(card)["stlogs01"] == "Cost (30 days): 5.00 USD"
    assert not [t for t in texts(card) if t.startswith("Cost (30 days) of these")]


def test_evidence_cards_nothing_known_of_resources_show_no_ci_or_cost() -> None:
    """Without a CI or a cost for its resources a card shows neither, only the resource ids."""
    for draw in (owner_card, reviewers_card):
        card = draw(policy_record(), REQUIREMENT, NAMES, resources=ResourceFacts())
        shown = " ".join(texts(card)) + " ".join(all_facts(card).values())
        assert "Configuration items" not in shown
        assert "Cost (" not in shown


def test_owner_card_facts_of_other_resources_are_not_shown() -> None:
    """A CI or cost of a resource the request does not name stays off its card."""
    record = RequestRecord(request(resources=(ACCOUNT,)))
    rows = all_facts(owner_card(record, REQUIREMENT, NAMES, resources=resource_facts()))
    assert "vm-web-01" not in rows
    assert rows["stlogs01"] == "Cost (30 days): 6.25 EUR"
