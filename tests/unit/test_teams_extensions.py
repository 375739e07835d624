"""Specification of the extension wire format, record-URL parsing and the extension cards.

Pure functions only: Teams' invoke activities in, Warden's typed turns out; Warden's answers
in, the invoke response bodies Teams documents out; pasted URLs in, the record they name out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot import activities
from bot.extensions import record_number_in
from bot.types import LinkPreview, SearchAnswer, SearchResult, TaskAnswer
from bot.unfurl import RecordRef, parse_record_url
from cards.extensions import IncidentChoice, link_dialog, record_card
from core.itsm import ItsmRecord, ItsmSystem, RecordType
from tests.unit.test_cards import assert_valid_card

INSTANCE = "https://acme.service-now.com"
SYS_ID = "9d385017c611228701d22104cc95c371"


def _activity(name: str, value: Any) -> dict[str, Any]:
    return {
        "type": "invoke",
        "name": name,
        "value": value,
        "from": {"id": "29:adele", "name": "Adele Vance", "aadObjectId": "a-1"},
        "recipient": {"id": "28:warden", "name": "Warden"},
        "conversation": {"id": "19:soc@thread.tacv2;messageid=17", "conversationType": "channel"},
        "serviceUrl": "https://smba.example/",
        "channelData": {"tenant": {"id": "t-1"}},
    }


def _record(**changes: Any) -> ItsmRecord:
    values: dict[str, Any] = {
        "system": ItsmSystem.SERVICENOW,
        "type": RecordType.CHANGE_REQUEST,
        "number": "CHG0030001",
        "key": SYS_ID,
        "short_description": "Rotate the VPN gateway certificate",
        "state": "-4",
        "state_label": "Assess",
        "priority": 3,
        "updated_at": datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        "url": f"{INSTANCE}/change_request.do?sys_id={SYS_ID}",
    }
    return ItsmRecord(**{**values, **changes})


@pytest.mark.parametrize(
    "url",
    [
        f"{INSTANCE}/change_request.do?sys_id={SYS_ID}",
        f"{INSTANCE}/change_request.do?sys_id={SYS_ID}&sysparm_view=ess",
        f"{INSTANCE}/nav_to.do?uri=change_request.do?sys_id={SYS_ID}",
        f"{INSTANCE}/nav_to.do?uri=%2Fchange_request.do%3Fsys_id%3D{SYS_ID}",
        f"{INSTANCE}/now/nav/ui/classic/params/target/change_request.do%3Fsys_id%3D{SYS_ID}",
        f"{INSTANCE}/now/sow/record/change_request/{SYS_ID}",
        f"{INSTANCE}/now/workspace/agent/record/change_request/{SYS_ID}/params/x",
        f"HTTPS://ACME.service-now.com:443/change_request.do?sys_id={SYS_ID.upper()}",
    ],
)
def test_parse_record_url_known_shape_names_the_record(url: str) -> None:
    """Every common record URL shape of the instance names the change by its sys_id."""
    assert parse_record_url(url, INSTANCE) == RecordRef(RecordType.CHANGE_REQUEST, key=SYS_ID)


def test_parse_record_url_number_query_names_the_record_by_number() -> None:
    """``sysparm_query=number=…`` names the record by number (when the table agrees)."""
    url = f"{INSTANCE}/nav_to.do?uri=incident.do%3Fsysparm_query%3Dnumber%3Dinc0010002"
    assert parse_record_url(url, INSTANCE) == RecordRef(RecordType.INCIDENT, number="INC0010002")
    mismatch = f"{INSTANCE}/incident.do?sysparm_query=number=CHG0030001"
    assert parse_record_url(mismatch, INSTANCE) is None


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example.com/change_request.do?sys_id={SYS_ID}",
        f"https://acme.service-now.com.evil.example/change_request.do?sys_id={SYS_ID}",
        f"https://acme.service-now.com@evil.example/change_request.do?sys_id={SYS_ID}",
        f"https://user@acme.service-now.com/change_request.do?sys_id={SYS_ID}",
        f"http://acme.service-now.com/change_request.do?sys_id={SYS_ID}",
        f"https://acme.service-now.com:8443/change_request.do?sys_id={SYS_ID}",
        f"{INSTANCE}/sys_user.do?sys_id={SYS_ID}",
        f"{INSTANCE}/change_request.do?sys_id=not-an-id",
        f"{INSTANCE}/change_request_list.do",
        f"{INSTANCE}/nav_to.do?uri=https://evil.example/change_request.do?sys_id={SYS_ID}",
        "javascript:alert(1)",
        "",
    ],
)
def test_parse_record_url_other_url_names_nothing(url: str) -> None:
    """Another host, port, scheme or table, user info, or a page that is no record: nothing."""
    assert parse_record_url(url, INSTANCE) is None


def test_record_number_in_message_finds_first_chg_or_inc() -> None:
    """The first CHG/INC number in a message is found, upper-cased; none gives ""."""
    assert record_number_in("see inc0010001 and CHG0030001") == "INC0010001"
    assert record_number_in("PRB0040001 only, and XCHG00300011") == ""


def test_record_number_in_message_finds_jira_key_when_asked() -> None:
    """With JSM connected, a capitalised issue key is found (a ServiceNow number first)."""
    assert record_number_in("Tracked in SEC-12, see UTF-8", issue_keys=True) == "SEC-12"
    assert record_number_in("SEC-12 and CHG0030001", issue_keys=True) == "CHG0030001"
    assert record_number_in("tracked in sec-12 (utf-8)", issue_keys=True) == ""
    assert record_number_in("Tracked in SEC-12") == ""


def test_search_query_reads_text_dataset_and_clamped_paging() -> None:
    """``application/search``: text trimmed, dataset kept, skip/top clamped, thread dropped."""
    value = {"queryText": " vpn ", "dataset": "d", "queryOptions": {"skip": -3, "top": 999}}
    query = activities.search_query(_activity("application/search", value))
    assert (query.text, query.dataset, query.skip, query.top) == ("vpn", "d", 0, 50)
    assert query.conversation.conversation_id == "19:soc@thread.tacv2"
    assert query.user.aad_object_id == "a-1"


def test_search_response_results_or_documented_error() -> None:
    """Results are a searchResponse of ``{title, value}``; an error is a 400 error body."""
    found = activities.search_response(SearchAnswer([SearchResult("CHG1 · x", "CHG1")]))
    assert found == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.search.searchResponse",
        "value": {"results": [{"title": "CHG1 · x", "value": "CHG1"}]},
    }
    error = activities.search_response(SearchAnswer(error="no such dataset"))
    assert error["statusCode"] == 400 and error["type"] == "application/vnd.microsoft.error"
    assert error["value"] == {"code": "BadRequest", "message": "no such dataset"}


def test_extension_action_reads_command_message_words_and_data() -> None:
    """fetchTask/submitAction: the command, the message's words without markup, the data."""
    value = {
        "commandId": "linkToIncident",
        "messagePayload": {"body": {"contentType": "html", "content": "<p>Use <b>CHG1</b></p>"}},
        "data": {"record": "CHG1"},
    }
    action = activities.extension_action(_activity("composeExtension/submitAction", value))
    assert (action.command_id, action.message_text, action.data) == (
        "linkToIncident",
        "Use CHG1",
        {"record": "CHG1"},
    )


def test_task_response_dialog_or_message() -> None:
    """A card answers as a ``continue`` task with the card attached; text as a message."""
    dialog = activities.task_response(TaskAnswer("Link", {"type": "AdaptiveCard"}))
    assert dialog["task"]["type"] == "continue"
    assert dialog["task"]["value"]["title"] == "Link"
    assert dialog["task"]["value"]["card"] == {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard"},
    }
    message = activities.task_response(TaskAnswer(message="Linked."))
    assert message == {"composeExtension": {"type": "message", "text": "Linked."}}


def test_unfurl_response_card_with_preview_or_empty_result() -> None:
    """An unfurl is a list result whose attachment carries a thumbnail preview; none is an
    empty result."""
    body = activities.unfurl_response(LinkPreview({"type": "AdaptiveCard"}, "CHG1", "x"))
    result = body["composeExtension"]
    assert (result["type"], result["attachmentLayout"]) == ("result", "list")
    [attachment] = result["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["preview"] == {
        "contentType": "application/vnd.microsoft.card.thumbnail",
        "content": {"title": "CHG1", "text": "x"},
    }
    link = activities.link_query(_activity("composeExtension/queryLink", {"url": " https://x "}))
    assert link.url == "https://x"
    assert activities.unfurl_response(None)["composeExtension"]["attachments"] == []


def test_link_dialog_lists_incidents_and_prefills_record() -> None:
    """The dialog offers each incident by ``#n · title`` (first chosen) and the number given;
    without incidents it says so and offers no button. Both are valid cards."""
    choices = [IncidentChoice("k2", 43, "Mass {{download}}"), IncidentChoice("k1", None, "Old")]
    card = link_dialog(choices, "CHG0030001", notice="Nothing was linked.")
    assert_valid_card(card)
    inputs = {item["id"]: item for item in card["body"] if "id" in item}
    assert [c["title"] for c in inputs["incident"]["choices"]][1] == "Old"
    assert inputs["incident"]["choices"][0]["title"].startswith("#43 \u00b7 Mass {")
    assert "{{" not in inputs["incident"]["choices"][0]["title"]
    assert inputs["incident"]["value"] == "k2" and inputs["record"]["value"] == "CHG0030001"
    assert card["body"][0]["text"] == "Nothing was linked."
    empty = link_dialog([])
    assert_valid_card(empty)
    assert "No incident cards" in str(empty) and "actions" not in empty


def test_record_card_shows_number_description_state_priority_updated() -> None:
    """The unfurled card: number, short description, state, priority, update time, *Open*."""
    card = record_card(_record())
    assert_valid_card(card)
    text = str(card)
    assert "ServiceNow CHG0030001" in text and "Rotate the VPN gateway" in text
    assert {"title": "State", "value": "Assess"} in card["body"][2]["facts"]
    assert {"title": "Priority", "value": "P3"} in card["body"][2]["facts"]
    assert "2026-11-25T09:30:00Z" in text
    assert card["actions"][0]["url"].endswith(SYS_ID)
    bare = record_card(_record(priority=None, updated_at=None, short_description="", url=""))
    assert_valid_card(bare)
    assert "actions" not in bare and "Priority" not in str(bare)
