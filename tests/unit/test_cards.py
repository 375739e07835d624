"""Specification of the card builders: golden JSON, the Adaptive Card 1.5 schema, behaviour.

Golden files live in ``tests/unit/golden/card_<variant>.json``. Run with
``WARDEN_UPDATE_GOLDEN=1`` to rewrite them from the builders (then review the diff).

The 1.5 schema has quirks, so :func:`assert_valid_card` does more than validate:
it does not know Teams' ``msteams`` extension (``additionalProperties: false`` on the card), so
that key is checked separately and removed first; it requires neither ``type`` nor ``version``
at the top, so both are asserted; and its enum "patterns" are unanchored (``goodish`` passes as a
colour), so colours, sizes, weights, spacings, font types and styles are checked against the
schema's exact enum lists. Cards are validated against ``#/definitions/AdaptiveCard`` (the only
branch of the root ``anyOf``), which gives readable errors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator
from jsonschema.exceptions import best_match

from cards import (
    error_card,
    help_card,
    incident_card,
    status_card,
    subscribed_card,
    unsubscribed_card,
    welcome_card,
)
from cards.incident import DESCRIPTION_LIMIT, SEVERITY_STYLES
from cards.links import SEARCH_DATASET, linked_card
from cards.verbs import CardVerb
from core.deployments import DeploymentNote
from core.itsm import ConfigurationItem, IncidentLink, ItsmSystem, RecordType
from core.models import (
    ConversationKind,
    ConversationStatus,
    Incident,
    IncidentSource,
    IncidentStatus,
    Owner,
    Severity,
    Subscription,
)
from core.triage import Actor, IncidentDetails, TriageAction, TriageChange, TriageState
from tests.unit.budget_card_samples import BUDGET_VARIANTS
from tests.unit.evidence_card_samples import EVIDENCE_VARIANTS
from tests.unit.outside_change_samples import OUTSIDE_CHANGE_VARIANTS
from tests.unit.roles_card_samples import ROLES_VARIANTS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA_PATH = ROOT / "contracts" / "adaptive-card-1.5.schema.json"
OUR_FUNCTION = re.compile(r"\{\{(DATE|TIME)\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(, SHORT)?\)\}\}")
KEY = "/subscriptions/s/resourcegroups/rg/providers/microsoft.securityinsights/incidents/i1"
CREATED = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
MODIFIED = datetime(2025, 3, 14, 10, 2, 7, tzinfo=UTC)
Card = dict[str, Any]


def make_incident(**changes: Any) -> Incident:
    """A minimal Medium incident: unassigned, no alerts, tactics, links or description."""
    fields: dict[str, Any] = {
        "key": KEY,
        "name": "4f0ad5b4-7b5a-4d4e-9d0e-2b1f3c6a9e10",
        "number": 3177,
        "title": "Suspicious sign-in from an unfamiliar location",
        "severity": Severity.MEDIUM,
        "status": IncidentStatus.NEW,
        "last_modified": MODIFIED,
        "incident_url": "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/i1",
    }
    fields.update(changes)
    return Incident(**fields)


def full_incident() -> Incident:
    """A High incident with every field the card shows set."""
    return make_incident(
        severity=Severity.HIGH,
        status=IncidentStatus.ACTIVE,
        description="Sign-in from 203.0.113.7 (Reykjavik) shortly after one from Lisbon.",
        owner=Owner(object_id="o1", name="Ada Lovelace", upn="ada@contoso.example"),
        classification="TruePositive",
        created=CREATED,
        alert_count=3,
        tactics=("InitialAccess", "CredentialAccess"),
        products=("Microsoft Entra ID Protection", "Microsoft Defender for Cloud Apps"),
        labels=("vip", "finance"),
        provider_name="Microsoft XDR",
        provider_url="https://security.microsoft.com/incidents/3177?tid=t1",
    )


DEFENDER_KEY = "/security/incidents/2972395"


def defender_incident(**changes: Any) -> Incident:
    """The minimal incident as Defender XDR reports it (its own key, no Sentinel link)."""
    fields: dict[str, Any] = {
        "key": DEFENDER_KEY,
        "name": "2972395",
        "number": 2972395,
        "incident_url": None,
        "provider_name": "Microsoft Defender XDR",
        "provider_url": "https://security.microsoft.com/incidents/2972395?tid=t1",
        "source": IncidentSource.DEFENDER,
        "xdr_id": "2972395",
    }
    return make_incident(**{**fields, **changes})


def status(**changes: Any) -> ConversationStatus:
    """A healthy, subscribed conversation's status, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "subscription": Subscription(conversation_id="c1", min_severity=Severity.MEDIUM),
        "incidents_posted": 42,
        "last_delivery": MODIFIED,
        "outbox_pending": 1,
        "outbox_dead": 0,
    }
    fields.update(changes)
    return ConversationStatus(**fields)


def severity_variant(severity: Severity) -> Card:
    """The card of the minimal incident at ``severity``."""
    return incident_card(make_incident(severity=severity))


def triage_action(state: TriageState, detail: str | None = None) -> TriageAction:
    """Ada's severity change on the minimal incident, in ``state``."""
    return TriageAction(
        id=7,
        intent_id="a1b2c3",
        incident_key=KEY,
        conversation_id="c1",
        verb=CardVerb.SEVERITY.value,
        change=TriageChange(kind="severity", severity=Severity.LOW, seen={"severity": "Medium"}),
        actor=Actor(object_id="o1", name="Ada Lovelace"),
        state=state,
        detail=detail,
        created_at=MODIFIED.timestamp(),
        updated_at=MODIFIED.timestamp(),
    )


CHANGE_LINK = IncidentLink(
    system=ItsmSystem.SERVICENOW,
    external_id="CHG0030001",
    key="a9e30c7dc61122760116894de7bcc7bd",
    url="https://contoso.service-now.com/change_request.do?sys_id=a9e30c7dc61122760116894de7bcc7bd",
    type=RecordType.CHANGE_REQUEST,
    status="Assess",
    priority=3,
)


def azure_cis() -> list[ConfigurationItem]:
    """Two Azure resources as the Resource Graph sync stores them (ids lower-cased)."""
    seen = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
    group = "/subscriptions/s/resourcegroups/rg-web-prod/providers"
    return [
        ConfigurationItem(
            ci_id=f"{group}/microsoft.web/sites/app-web-prod-000001",
            name="app-web-prod-000001",
            type="microsoft.web/sites",
            owner="Megan Bowen",
            env="prod",
            last_seen_utc=seen,
        ),
        ConfigurationItem(
            ci_id=f"{group}/microsoft.cdn/profiles/cdn-web",
            name="cdn-web",
            type="microsoft.cdn/profiles",
            last_seen_utc=seen,
        ),
    ]


def configuration_items(count: int) -> list[ConfigurationItem]:
    """``count`` CIs as the CMDB lookup stores them: a Linux web server first, then others."""
    seen = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
    first = ConfigurationItem(
        ci_id="ci0",
        name="web-prd-01",
        type="cmdb_ci_linux_server",
        owner="David Loo",
        env="Production",
        tags=["pci"],
        last_seen_utc=seen,
    )
    others = [
        ConfigurationItem(
            ci_id=f"ci{n}", name=f"host-{n:02d}", type="cmdb_ci_ip_switch", last_seen_utc=seen
        )
        for n in range(1, count)
    ]
    return [first, *others][:count]


def cmdb_summary(state: str, **changes: Any) -> dict[str, Any]:
    """The CMDB sync's last run as ``core.store.cmdb_cis.summary`` reports it."""
    facts = {
        "state": state,
        "run": 12,
        "started_at": "2025-03-14T02:00:00Z",
        "finished_at": "2025-03-14T02:07:31Z",
        "read": 1840,
        "owners_unresolved": 0,
        "error": None,
        "active": 1838,
        "retired": 4,
        "needing_tags": 211,
    }
    return {**facts, **changes}


VARIANTS: dict[str, Callable[[], Card]] = {
    "incident_full": lambda: incident_card(full_incident()),
    "incident_triage_applying": lambda: incident_card(
        make_incident(), triage_action(TriageState.PENDING), triage=True, version="v1"
    ),
    "incident_triage_closed_failed": lambda: incident_card(
        make_incident(status=IncidentStatus.CLOSED, classification="FalsePositive"),
        triage_action(TriageState.FAILED, "Sentinel refused the change."),
        triage=True,
        version="v2",
    ),
    "incident_triage_details_notice": lambda: incident_card(
        full_incident(),
        triage=True,
        version="v3",
        details=IncidentDetails(
            alerts=(("Impossible travel", "High · New · Entra ID Protection"),),
            entities=(("Account", "ada@contoso.example"), ("Ip", "203.0.113.7")),
            more_alerts=2,
        ),
        notice="This incident changed since your card was drawn.",
    ),
    "incident_minimal": lambda: incident_card(make_incident()),
    "incident_defender_triage_waiting": lambda: incident_card(
        defender_incident(), triage_action(TriageState.WAITING), triage=True, version="v7"
    ),
    "incident_both_sources": lambda: incident_card(
        make_incident(provider_name="Microsoft XDR", xdr_id="2972395"), triage=True, version="v8"
    ),
    "incident_triage_linked": lambda: incident_card(
        make_incident(),
        triage=True,
        version="v4",
        links=[CHANGE_LINK],
        itsm=True,
    ),
    "incident_triage_linked_cis": lambda: incident_card(
        make_incident(),
        triage=True,
        version="v6",
        links=[CHANGE_LINK],
        itsm=True,
        cis=configuration_items(7),
    ),
    "incident_deployment_azure_cis": lambda: incident_card(
        make_incident(),
        cis=azure_cis(),
        deployment=DeploymentNote(
            name="webapp-release-20250314",
            minutes=12,
            resource=azure_cis()[0].ci_id,
        ),
    ),
    "incident_triage_itsm_unlinked": lambda: incident_card(
        make_incident(), triage=True, version="v5", itsm=True
    ),
    "linked_new": lambda: linked_card(42, CHANGE_LINK, linked=True, already=False),
    "unlinked": lambda: linked_card(42, CHANGE_LINK, linked=False, already=False),
    **{f"incident_severity_{s.value.lower()}": partial(severity_variant, s) for s in Severity},
    **{f"welcome_{k.value}": partial(welcome_card, "Warden", k) for k in ConversationKind},
    **EVIDENCE_VARIANTS,
    **ROLES_VARIANTS,
    **OUTSIDE_CHANGE_VARIANTS,
    **BUDGET_VARIANTS,
    "help_plain": lambda: help_card(),
    "help_unknown_suggestion": lambda: help_card(
        unknown="subscrbe", suggestion="subscribe incidents"
    ),
    "status_subscribed": lambda: status_card(status()),
    "status_unsubscribed_dead": lambda: status_card(
        status(subscription=None, last_delivery=None, outbox_pending=0, outbox_dead=2)
    ),
    "status_budget_scopes": lambda: status_card(
        status(budget_scopes=("11111111-2222-3333-4444-555555555555/web",))
    ),
    "status_cmdb_finished": lambda: status_card(status(), cmdb=cmdb_summary("finished")),
    "status_cmdb_failed": lambda: status_card(
        status(),
        cmdb=cmdb_summary(
            "failed", finished_at=None, error="ResourceGraphError: 403 AuthorizationFailed"
        ),
    ),
    "subscribed_medium": lambda: subscribed_card(
        Subscription(conversation_id="c1", min_severity=Severity.MEDIUM)
    ),
    "subscribed_all": lambda: subscribed_card(Subscription(conversation_id="c1")),
    "unsubscribed_had_subscription": lambda: unsubscribed_card(True),
    "unsubscribed_no_subscription": lambda: unsubscribed_card(False),
    "error_plain": lambda: error_card("I couldn't do that", "Sentinel did not answer in time."),
    "error_with_reference": lambda: error_card(
        "Something went wrong", "Please try again later.", correlation_id="7f3c2a9e"
    ),
}


@cache
def schema() -> dict[str, Any]:
    """The Adaptive Card 1.5 schema, checked against its draft-06 metaschema."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft6Validator.check_schema(loaded)
    return loaded


@cache
def card_validator() -> Draft6Validator:
    """A validator for ``#/definitions/AdaptiveCard`` of the 1.5 schema."""
    return Draft6Validator(
        {"$ref": "#/definitions/AdaptiveCard", "definitions": schema()["definitions"]}
    )


def exact_enum(definition: str) -> set[str]:
    """The exact values of one of the schema's enum definitions (its first ``anyOf`` branch)."""
    return set(schema()["definitions"][definition]["anyOf"][0]["enum"])


def walk(node: Any) -> Iterator[Any]:
    """Every dict, list and scalar in ``node``, depth first."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def assert_exact_enums(card: Card) -> None:
    """Fail when a styling value is not exactly one of the schema's enum values."""
    container_style = exact_enum("ContainerStyle")
    checks = {
        "color": exact_enum("Colors"),
        "size": exact_enum("FontSize"),
        "weight": exact_enum("FontWeight"),
        "spacing": exact_enum("Spacing"),
        "fontType": exact_enum("FontType"),
    }
    styles = {
        "Container": container_style,
        "Column": container_style,
        "TextBlock": exact_enum("TextBlockStyle"),
        "Input.Text": exact_enum("TextInputStyle"),
    }
    for node in walk(card):
        if not isinstance(node, dict):
            continue
        for key, allowed in checks.items():
            assert key not in node or node[key] in allowed, (key, node)
        if "style" in node:
            assert node["style"] in styles[node["type"]], node


def assert_valid_card(card: Card) -> None:
    """Fail unless ``card`` is a full-width Adaptive Card 1.5 that the schema accepts."""
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    teams = dict(card["msteams"])
    for mention in teams.pop("entities", []):  # Teams mentions: each is written on the card
        assert mention["type"] == "mention" and mention["text"] in json.dumps(card["body"])
    assert teams == {"width": "Full"}
    bare = without_people_picker({key: value for key, value in card.items() if key != "msteams"})
    error = best_match(card_validator().iter_errors(bare))
    assert error is None, f"{list(error.absolute_path)}: {error.message}"
    assert_exact_enums(card)


TEAMS_DATASETS = {
    "graph.microsoft.com/users",
    "graph.microsoft.com/users?scope=currentContext",
    SEARCH_DATASET,
}
"""The ``Data.Query`` datasets of Teams' people picker (a Teams extension to Input.ChoiceSet)."""


def without_people_picker(node: Any) -> Any:
    """``node`` without Teams' ``choices.data`` (checked here; the 1.5 schema lacks it)."""
    if isinstance(node, list):
        return [without_people_picker(item) for item in node]
    if not isinstance(node, dict):
        return node
    query = node.get("choices.data")
    if query is not None:
        assert node["type"] == "Input.ChoiceSet"
        assert query["type"] == "Data.Query" and query["dataset"] in TEAMS_DATASETS
    return {k: without_people_picker(v) for k, v in node.items() if k != "choices.data"}


def strings(card: Card) -> list[str]:
    """Every string value in ``card``."""
    return [node for node in walk(card) if isinstance(node, str)]


def facts(card: Card) -> dict[str, str]:
    """The incident card's facts as ``{title: value}``."""
    fact_sets = [
        node for node in walk(card) if isinstance(node, dict) and node.get("type") == "FactSet"
    ]
    return {fact["title"]: fact["value"] for fact in fact_sets[0]["facts"]}


def action_titles(card: Card) -> list[str]:
    """The titles of the card's link buttons (Action.OpenUrl)."""
    return [a["title"] for a in card.get("actions", []) if a["type"] == "Action.OpenUrl"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_card_variant_built_matches_golden_file(variant: str) -> None:
    """Each card variant equals its golden JSON (rewritten first when WARDEN_UPDATE_GOLDEN=1)."""
    card = VARIANTS[variant]()
    path = GOLDEN / f"card_{variant}.json"
    if os.environ.get("WARDEN_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with WARDEN_UPDATE_GOLDEN=1 to create it"
    assert card == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_card_variant_built_is_valid_adaptive_card_1_5(variant: str) -> None:
    """Each card variant validates against the 1.5 schema and uses exact enum values."""
    assert_valid_card(VARIANTS[variant]())


def test_validator_quirky_card_is_rejected_by_extra_checks() -> None:
    """The extra checks catch what the lax schema lets through (missing type, fuzzy colour)."""
    assert best_match(card_validator().iter_errors({})) is None
    fuzzy = {
        "type": "AdaptiveCard",
        "body": [{"type": "TextBlock", "text": "x", "color": "goodish"}],
    }
    assert best_match(card_validator().iter_errors(fuzzy)) is None
    with pytest.raises(AssertionError):
        assert_exact_enums(fuzzy)


def test_incident_card_no_owner_shows_unassigned() -> None:
    """An incident without an owner shows Owner: Unassigned."""
    assert facts(incident_card(make_incident()))["Owner"] == "Unassigned"


def test_incident_card_owner_without_name_shows_upn() -> None:
    """An owner known only by UPN is shown by UPN."""
    card = incident_card(make_incident(owner=Owner(upn="bob@contoso.example")))
    assert facts(card)["Owner"] == "bob@contoso.example"


def test_incident_card_empty_fields_omit_their_rows() -> None:
    """Zero alerts and empty tactics, products, labels and provider leave no rows behind."""
    assert list(facts(incident_card(make_incident()))) == ["Status", "Owner"]


def test_incident_card_full_incident_shows_every_fact() -> None:
    """A fully set incident shows humanised tactics and classification, alerts and provider."""
    shown = facts(incident_card(full_incident()))
    assert shown["Alerts"] == "3"
    assert shown["Tactics"] == "Initial Access, Credential Access"
    assert shown["Labels"] == "vip, finance"
    assert shown["Provider"] == "Microsoft XDR"
    assert shown["Classification"] == "True Positive"


def test_incident_card_title_has_number_and_title() -> None:
    """The title reads "#<number> · <title>"; without a number, just the title."""
    assert "#3177 \u00b7 Suspicious sign-in from an unfamiliar location" in strings(
        incident_card(make_incident())
    )
    assert "Suspicious sign-in from an unfamiliar location" in strings(
        incident_card(make_incident(number=None))
    )


def test_incident_card_no_provider_url_omits_defender_button() -> None:
    """Without provider_url there is only "Open in Sentinel"; with it, both buttons."""
    assert action_titles(incident_card(make_incident())) == ["Open in Sentinel"]
    assert action_titles(incident_card(full_incident())) == [
        "Open in Sentinel",
        "Open in Defender",
    ]


def test_incident_card_unsafe_links_make_no_buttons() -> None:
    """javascript:, relative and host-less links never become OpenUrl buttons."""
    card = incident_card(
        make_incident(incident_url="javascript:alert(1)", provider_url="/incidents/1")
    )
    assert action_titles(card) == []
    assert_valid_card(card)


def test_incident_card_long_description_is_truncated_with_ellipsis() -> None:
    """A long description is cut at a word to at most 300 characters ending in an ellipsis."""
    text = "word " * 200
    card = incident_card(make_incident(description=text))
    shown = [s for s in strings(card) if s.startswith("word")]
    assert len(shown) == 1 and shown[0].endswith("word\u2026")
    assert len(shown[0]) <= DESCRIPTION_LIMIT


def test_incident_card_short_description_is_shown_whole() -> None:
    """A description under the limit is shown unchanged."""
    card = incident_card(make_incident(description="Two failed logons."))
    assert "Two failed logons." in strings(card)


def test_incident_card_braces_in_untrusted_text_form_no_function() -> None:
    """Template braces in title, description, owner and labels leave no ``{{`` but our own."""
    sneaky = "{{DATE(2019-01-01T13:15:30Z, SHORT)}} {{{x}}}"
    card = incident_card(
        make_incident(
            title=sneaky,
            description=sneaky,
            owner=Owner(name=sneaky),
            labels=(sneaky,),
            created=CREATED,
        )
    )
    leftovers = [OUR_FUNCTION.sub("", s) for s in strings(card)]
    assert not [s for s in leftovers if "{{" in s]
    assert sum(len(OUR_FUNCTION.findall(s)) for s in strings(card)) == 4
    assert_valid_card(card)


def test_incident_card_markdown_link_in_text_cannot_form_link() -> None:
    """``[label](url)`` in untrusted text is broken apart so no renderer makes it a link."""
    phish = "[Reset your password](https://evil.example)"
    card = incident_card(make_incident(title=phish, labels=(phish,), owner=Owner(name=phish)))
    assert not [s for s in strings(card) if "](" in s]


def test_incident_card_control_and_bidi_characters_are_removed() -> None:
    """Newlines fold to spaces and bidi overrides disappear from untrusted text."""
    card = incident_card(make_incident(title="evil\u202etxt.exe\n- listed"))
    assert "#3177 \u00b7 eviltxt.exe - listed" in strings(card)


def test_incident_card_times_are_rfc3339_utc_functions() -> None:
    """Created and updated times become DATE/TIME functions in UTC, whatever the input zone."""
    plus_two = timezone(timedelta(hours=2))
    card = incident_card(
        make_incident(
            created=datetime(2025, 3, 14, 11, 0, tzinfo=plus_two),
            last_modified=datetime(2025, 3, 14, 12, 0),
        )
    )
    text = " ".join(strings(card))
    assert "Created {{DATE(2025-03-14T09:00:00Z, SHORT)}} {{TIME(2025-03-14T09:00:00Z)}}" in text
    assert (
        "Updated {{DATE(2025-03-14T12:00:00Z, SHORT)}} {{TIME(2025-03-14T12:00:00Z)}} \u00b7 Warden"
        in text
    )


@pytest.mark.parametrize("severity", list(Severity))
def test_incident_card_any_severity_pill_uses_mapped_colour(severity: Severity) -> None:
    """The severity pill names the severity and carries that severity's colour and style."""
    pill = incident_card(make_incident(severity=severity))["body"][0]["columns"][0]
    look = SEVERITY_STYLES[severity]
    assert pill["style"] == look.style
    assert (pill["items"][0]["text"], pill["items"][0]["color"]) == (
        severity.value.upper(),
        look.color,
    )


def test_incident_card_same_incident_gives_equal_independent_cards() -> None:
    """Building twice gives equal cards that share no mutable parts."""
    first, second = incident_card(full_incident()), incident_card(full_incident())
    assert first == second
    first["body"][0]["columns"].clear()
    assert second == incident_card(full_incident())


def test_incident_card_refresh_button_carries_incident_key() -> None:
    """The card's Refresh button sends the refresh verb with the incident's key."""
    incident = make_incident()
    executes = [a for a in incident_card(incident)["actions"] if a["type"] == "Action.Execute"]
    assert executes == [
        {
            "type": "Action.Execute",
            "title": "Refresh",
            "verb": CardVerb.REFRESH.value,
            "data": {"incident": incident.key},
        }
    ]


def _buttons(card: Card) -> dict[str, Card]:
    """Every action in the card (body action sets and card actions), by title."""
    return {
        node["title"]: node
        for node in walk(card)
        if isinstance(node, dict) and str(node.get("type", "")).startswith("Action.")
    }


def test_triage_buttons_carry_incident_and_version() -> None:
    """Every triage button sends the incident key and the version the card shows."""
    card = incident_card(make_incident(), triage=True, version="v9")
    buttons = _buttons(card)
    assert buttons["Activate"]["data"] == {"incident": KEY, "version": "v9", "status": "Active"}
    for title in ("Assign to me", "Assign", "Change severity", "Close incident"):
        assert buttons[title]["data"] == {"incident": KEY, "version": "v9"}, title
    assert buttons["Post comment"]["data"] == {"incident": KEY, "version": "v9"}
    assert "Reopen" not in buttons


def test_triage_closed_incident_offers_reopen_not_close() -> None:
    """A closed incident can be reopened but not closed again."""
    buttons = _buttons(
        incident_card(make_incident(status=IncidentStatus.CLOSED), triage=True, version="v")
    )
    assert buttons["Reopen"]["data"]["status"] == "Active"
    assert "Close\u2026" not in buttons and "Activate" not in buttons


def test_triage_action_line_names_person_and_neutralises_text() -> None:
    """The action line names who asked; a crafted display name forms no link or function."""
    action = triage_action(TriageState.APPLIED).model_copy(
        update={"actor": Actor(object_id="o1", name="[Mallory](https://evil.example) {{x}}")}
    )
    text = " ".join(strings(incident_card(make_incident(), action, triage=True, version="v")))
    assert "Severity Medium \u2192 Low" in text
    assert "](https://evil.example)" not in text and "{{x}}" not in text


def test_no_triage_buttons_without_triage() -> None:
    """Without a Sentinel connection the card has no triage buttons."""
    assert set(_buttons(incident_card(make_incident()))) == {"Open in Sentinel", "Refresh"}


def test_incident_card_cis_listed_under_links_with_class_env_owner() -> None:
    """CIs are listed after the links: name, then class · environment · owner."""
    card = incident_card(make_incident(), links=[CHANGE_LINK], cis=configuration_items(1))
    texts = strings(card)
    assert texts.index("Configuration items") > texts.index("Linked records")
    assert "web-prd-01" in texts
    assert "Linux Server \u00b7 Production \u00b7 David Loo" in texts


def test_incident_card_more_than_five_cis_counts_the_rest() -> None:
    """Five CIs are listed; the rest are counted as ``+N more``."""
    texts = strings(incident_card(make_incident(), cis=configuration_items(8)))
    assert "host-04" in texts and "host-05" not in texts
    assert "+3 more" in texts


def test_incident_card_no_cis_has_no_section() -> None:
    """Without CIs the card has no configuration items section."""
    assert "Configuration items" not in strings(incident_card(make_incident(), cis=[]))


def test_incident_card_defender_waiting_names_defender_not_sentinel() -> None:
    """A Defender XDR incident's waiting action says it waits for Defender XDR."""
    card = incident_card(defender_incident(), triage_action(TriageState.WAITING), triage=True)
    text = " ".join(strings(card))
    assert "Waiting for Defender XDR" in text and "Sentinel" not in text


def test_incident_card_sentinel_waiting_names_sentinel() -> None:
    """A Sentinel incident's waiting action still says it waits for Sentinel."""
    card = incident_card(make_incident(), triage_action(TriageState.WAITING), triage=True)
    assert "Waiting for Sentinel" in " ".join(strings(card))


def test_triage_defender_incident_offers_no_severity_button() -> None:
    """Graph cannot change a Defender XDR incident's severity: no *Severity…* on its card."""
    buttons = _buttons(incident_card(defender_incident(), triage=True, version="v"))
    assert "Severity\u2026" not in buttons and "Change severity" not in buttons
    assert {"Assign to me", "Activate", "Close\u2026", "Comment\u2026"} <= set(buttons)
    sentinel = _buttons(incident_card(make_incident(), triage=True, version="v"))
    assert "Severity\u2026" in sentinel


@pytest.mark.parametrize(
    "incident",
    [
        make_incident(xdr_id="2972395"),
        defender_incident(key=KEY, source_key=DEFENDER_KEY),
    ],
    ids=["sentinel-version", "defender-version-joined"],
)
def test_incident_card_both_sources_says_reported_by_both(incident: Incident) -> None:
    """One card for an incident both report: *Reported by* Sentinel and Defender XDR."""
    assert facts(incident_card(incident))["Reported by"] == "Sentinel and Defender XDR"


def test_incident_card_one_source_has_no_reported_by_row() -> None:
    """A Sentinel-only or Defender-only incident has no *Reported by* row."""
    assert "Reported by" not in facts(incident_card(make_incident()))
    assert "Reported by" not in facts(incident_card(defender_incident()))


def test_incident_card_defender_details_count_rest_in_defender() -> None:
    """Alerts beyond those shown are counted "in Defender XDR" on a Defender card."""
    details = IncidentDetails(alerts=(("Phish", "High"),), entities=(), more_alerts=4)
    card = incident_card(defender_incident(), triage=True, version="v", details=details)
    assert "4 more in Defender XDR" in strings(card)


def test_status_card_cmdb_sync_never_run_shows_no_cmdb_section() -> None:
    """A CMDB that was never synced adds nothing to the status card."""
    never = {"state": "never run", "run": None, "active": 0, "retired": 0, "needing_tags": 0}
    assert status_card(status(), cmdb=never) == status_card(status())


def test_status_card_cmdb_sync_failed_shows_why_in_attention() -> None:
    """A failed last run is coloured attention and says why it stopped (made inert)."""
    card = status_card(status(), cmdb=cmdb_summary("failed", error="boom {{DATE(x)}}"))
    texts = {b["text"]: b.get("color") for b in card["body"] if b["type"] == "TextBlock"}
    assert any(t.startswith("Run 12: failed") and c == "attention" for t, c in texts.items())
    stopped = [t for t in texts if t.startswith("Stopped: ")]
    assert stopped and "{{" not in stopped[0]
