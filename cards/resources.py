"""The resources part of an evidence card: the Azure CIs of the request's non-compliant
resources, and what each cost over the last :data:`~cards.links.COST_DAYS` days.

Each resource the CMDB sync knows is a CI row (``vm-web-01`` → ``Azure VM · prod · Ada ·
Cost (30 days): 12.34 EUR``, as on the incident card); a resource only the cost exports know
is a row of its own (its name → its cost). With two costs or more in one currency, a line
gives their total. Nothing is shown that is not known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cards.elements import JSON, fact_set, text_block
from cards.links import COST_DAYS, MAX_CIS, ci_rows, cost_text
from cards.text import inert
from core.costs import ResourceCost
from core.itsm import ConfigurationItem


@dataclass(frozen=True)
class ResourceFacts:
    """What is known of a request's resources, each by its lower-cased ARM id: its Azure CI
    (active ones only) and its cost over the last :data:`~cards.links.COST_DAYS` days."""

    cis: Mapping[str, ConfigurationItem] = field(default_factory=dict)
    costs: Mapping[str, ResourceCost] = field(default_factory=dict)


LISTED = 10
"""Resource ids the owner's card lists at most."""


def listed_resources(resources: Sequence[str]) -> list[JSON]:
    """``Non-compliant resources: <ids>`` (the first :data:`LISTED`); nothing without one."""
    if not resources:
        return []
    listed = ", ".join(inert(r) for r in resources[:LISTED])
    return [text_block(f"Non-compliant resources: {listed}", isSubtle=True)]


def resource_rows(resources: Sequence[str], facts: ResourceFacts | None) -> list[JSON]:
    """The CIs of ``resources`` with their costs, the costs of those that are no CI, and the
    total cost; nothing when ``facts`` knows none of them."""
    if facts is None:
        return []
    wanted = list(dict.fromkeys(r.lower() for r in resources))
    cis = [facts.cis[r] for r in wanted if r in facts.cis]
    parts = ci_rows(cis, facts.costs)
    uncatalogued = [facts.costs[r] for r in wanted if r in facts.costs and r not in facts.cis]
    if uncatalogued:
        rows = [(_name(c.resource_id), cost_text(c)) for c in uncatalogued[:MAX_CIS]]
        parts.append(fact_set(rows, spacing="small"))
    costs = [facts.costs[r] for r in wanted if r in facts.costs]
    total = _total(costs)
    if total is not None:
        line = f"Cost ({COST_DAYS} days) of these {len(costs)} resources: {inert(total)}"
        parts.append(text_block(line, weight="bolder", size="small", spacing="small"))
    return parts


def _name(resource_id: str) -> str:
    """The last segment of an ARM id (its resource name), made inert."""
    return inert(resource_id.rstrip("/").rsplit("/", 1)[-1]) or inert(resource_id)


def _total(costs: Sequence[ResourceCost]) -> str | None:
    """The sum of two costs or more when they share a currency (``45.00 EUR``), else None."""
    currencies = {c.currency for c in costs}
    if len(costs) < 2 or len(currencies) != 1:
        return None
    return ResourceCost("", sum(c.cost for c in costs), currencies.pop()).shown()
