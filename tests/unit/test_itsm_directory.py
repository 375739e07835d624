"""Specification of the ITSM directory: which system a reference names, which connector
answers it, what people are told when that system is not connected, and Jira issue URLs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from bot.unfurl import parse_issue_url
from cards.links import itsm_buttons
from connectors.registry import held
from core.errors import DeliveryError, Outcome
from core.itsm import ItsmConnector, ItsmRecord, ItsmSystem, RecordType
from core.itsm_directory import ItsmDirectory, ItsmNotConnected, system_of
from core.settings.itsm import ItsmSettings
from core.store.links import ITSM_CREATE_JOB, ITSM_OUTCOME_JOB
from core.store.outbox import Job
from wiring.itsm import ItsmJobsBySystem

SITE = "https://contoso.atlassian.net"


class _Connector:
    """A connector that answers every search with one record of its system."""

    def __init__(self, system: ItsmSystem, number: str) -> None:
        self.system, self.number = system, number

    async def search(
        self, text: str, *, types: Sequence[RecordType], limit: int = 10
    ) -> list[ItsmRecord]:
        return [ItsmRecord(system=self.system, type=types[0], number=self.number, key="k")]


def _directory(*systems: ItsmSystem, **more: Any) -> ItsmDirectory:
    numbers = {ItsmSystem.SERVICENOW: "CHG0030001", ItsmSystem.JSM: "SEC-4"}
    found = {s: cast(ItsmConnector, _Connector(s, numbers[s])) for s in systems}
    setup = {ItsmSystem.JSM: "an administrator sets WARDEN_JSM__BASE_URL."}
    return ItsmDirectory(found, setup=setup, **more)


@pytest.mark.parametrize(
    ("reference", "system"),
    [
        ("CHG0030001", ItsmSystem.SERVICENOW),
        (" inc0010001 ", ItsmSystem.SERVICENOW),
        ("SEC-12", ItsmSystem.JSM),
        ("sec-12", ItsmSystem.JSM),
    ],
)
def test_system_of_reference_form_names_its_system(reference: str, system: ItsmSystem) -> None:
    """A ServiceNow number is ServiceNow's, a Jira issue key Jira's, in any case."""
    assert system_of(reference) is system


def test_system_of_neither_form_says_what_is_accepted() -> None:
    """A reference of neither form is refused naming both forms."""
    with pytest.raises(ValueError, match=r"neither a ServiceNow record number.*nor a Jira"):
        system_of("hello")


def test_for_reference_system_not_connected_names_what_to_configure() -> None:
    """A Jira key while only ServiceNow is connected: the error names JSM's setting."""
    directory = _directory(ItsmSystem.SERVICENOW)
    with pytest.raises(ItsmNotConnected) as caught:
        directory.for_reference("sec-12")
    assert "SEC-12 is a Jira Service Management record" in caught.value.user_message
    assert "WARDEN_JSM__BASE_URL" in caught.value.user_message
    assert directory.for_reference("CHG0030001").system is ItsmSystem.SERVICENOW


def test_default_servicenow_when_connected_else_jsm_else_the_setting() -> None:
    """New records go to ServiceNow when it is connected, else JSM, unless the setting says."""
    both = (ItsmSystem.SERVICENOW, ItsmSystem.JSM)
    assert _directory(*both).default_system is ItsmSystem.SERVICENOW
    assert _directory(ItsmSystem.JSM).default_system is ItsmSystem.JSM
    chosen = _directory(*both, default=ItsmSystem.JSM)
    assert chosen.default is not None and chosen.default.system is ItsmSystem.JSM
    assert _directory(ItsmSystem.SERVICENOW, default=ItsmSystem.JSM).default is None


async def test_search_both_systems_unless_the_text_is_one_systems_reference() -> None:
    """Words search every connected system; a Jira key only Jira."""
    directory = _directory(ItsmSystem.SERVICENOW, ItsmSystem.JSM)
    types = (RecordType.CHANGE_REQUEST,)
    found = await directory.search("vpn gateway", types=types)
    assert [r.number for r in found] == ["CHG0030001", "SEC-4"]
    assert [r.number for r in await directory.search("SEC-4", types=types)] == ["SEC-4"]


def test_settings_default_not_configured_names_the_variable() -> None:
    """``WARDEN_ITSM__DEFAULT=jsm`` without JSM is a problem naming both variables."""
    [problem] = ItsmSettings(default=ItsmSystem.JSM).problems(servicenow=True, jsm=False)
    assert problem.startswith("WARDEN_ITSM__DEFAULT: jsm is not configured")
    assert "WARDEN_JSM__BASE_URL" in problem
    assert ItsmSettings().problems(servicenow=False, jsm=False) == []


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (f"{SITE}/browse/SEC-123", "SEC-123"),
        (f"{SITE}/browse/sec-7/?focusedCommentId=1#x", "SEC-7"),
        ("https://CONTOSO.atlassian.net:443/browse/SEC-9", "SEC-9"),
        ("https://evil.example.com/browse/SEC-123", None),
        (f"{SITE}/browse/SEC-0", None),
        (f"{SITE}/jira/software/projects/SEC", None),
        ("https://user:pw@contoso.atlassian.net/browse/SEC-1", None),
    ],
)
def test_parse_issue_url_only_browse_links_of_the_site(url: str, key: str | None) -> None:
    """``/browse/KEY`` of the configured site names the issue; anything else nothing."""
    assert parse_issue_url(url, SITE) == key


def test_itsm_buttons_name_the_connected_system() -> None:
    """One system: the button names it; both: it asks for a record of either."""
    jira = itsm_buttons("k", "v", systems=(ItsmSystem.JSM,))[0]
    assert jira["title"] == "Link to Jira Service Management\u2026"
    assert jira["card"]["body"][0]["label"] == "Jira issue key"
    both = itsm_buttons("k", "v", systems=(ItsmSystem.SERVICENOW, ItsmSystem.JSM))[0]
    assert both["title"] == "Link to a record\u2026"
    assert both["card"]["body"][0]["placeholder"] == "CHG0030001 or SEC-123"


def _job(kind: str, **payload: Any) -> Job:
    return Job(id=1, kind=kind, ordering_key="k", conversation_id=None, payload=payload, attempts=0)


async def test_jobs_go_to_the_system_they_name_and_wait_for_one_not_running() -> None:
    """An outcome naming JSM runs JSM's handler; a create naming none runs the default's; a
    job of a system not running is kept in the outbox (retry, no attempt spent)."""
    ran: list[str] = []

    def recorder(name: str) -> Any:
        async def handle(job: Job) -> None:
            ran.append(name)

        return handle

    routed = ItsmJobsBySystem(
        {ItsmSystem.SERVICENOW: recorder("servicenow"), ItsmSystem.JSM: recorder("jsm")},
        {},
        ItsmSystem.JSM,
    )
    await routed(_job(ITSM_OUTCOME_JOB, system="servicenow"))
    await routed(_job(ITSM_OUTCOME_JOB, system="jsm"))
    await routed(_job(ITSM_CREATE_JOB))
    assert ran == ["servicenow", "jsm", "jsm"]
    waiting = ItsmJobsBySystem(
        {ItsmSystem.SERVICENOW: recorder("servicenow")},
        {ItsmSystem.JSM: held("jsm")},
        ItsmSystem.SERVICENOW,
    )
    with pytest.raises(DeliveryError) as caught:
        await waiting(_job(ITSM_OUTCOME_JOB, system="jsm"))
    assert caught.value.outcome is Outcome.RETRY and caught.value.attempted is False
    assert "WARDEN_CONNECTORS__JSM__ENABLED=false" in str(caught.value)
    with pytest.raises(DeliveryError) as unknown:
        await waiting(_job(ITSM_OUTCOME_JOB, system="remedy"))
    assert unknown.value.outcome is Outcome.FAIL
