"""Encoded queries: built from allowed fields, refusing values that could change them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.servicenow.query import (
    CMDB_CI,
    Query,
    fields_param,
    glide_time,
    writable,
)


def test_query_conditions_joined_with_caret() -> None:
    """Conditions are ANDed with ^ and an ORDERBY comes last."""
    query = Query("change_request").where("correlation_id", "=", "sentinel:42")
    query.where("active", "=", "true").order_by("sys_updated_on", descending=True)
    assert query.encoded() == ("correlation_id=sentinel:42^active=true^ORDERBYDESCsys_updated_on")


def test_query_in_list_ors_every_field() -> None:
    """An IN list is applied to each named field, joined with ^OR."""
    query = Query(CMDB_CI).where_in(("name", "ip_address"), ["web01", "10.0.0.4"])
    assert query.encoded() == "nameINweb01,10.0.0.4^ORip_addressINweb01,10.0.0.4"


@pytest.mark.parametrize(
    "value",
    ["a^ORactive=true", "x^NQnumber=CHG1", "line\nbreak", "tab\there", "", "   ", "nul\x00"],
)
def test_query_unsafe_value_refused(value: str) -> None:
    """A value with ^, a control character, or nothing in it is refused, not escaped."""
    with pytest.raises(ValueError):
        Query("incident").where("short_description", "LIKE", value)


def test_query_comma_refused_in_list_only() -> None:
    """A comma splits an IN list, so it is refused there (and allowed elsewhere)."""
    with pytest.raises(ValueError, match="','"):
        Query(CMDB_CI).where_in(("name",), ["a,b"])
    assert Query("incident").where("short_description", "LIKE", "a,b").encoded() == (
        "short_descriptionLIKEa,b"
    )


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("change_request", "correlation_idx"),
        ("change_request", "sys_id=x^ORsys_id"),
        ("incident", "name"),
        ("cmdb_ci", "number"),
        ("sys_user", "name"),
    ],
)
def test_query_field_outside_allow_list_refused(table: str, field: str) -> None:
    """A field not allowed on its table is refused (ServiceNow would silently ignore it)."""
    with pytest.raises(ValueError, match="not a field"):
        Query(table).where(field, "=", "x")


def test_query_unknown_operator_refused() -> None:
    """Only the operators Warden uses are accepted."""
    with pytest.raises(ValueError, match="operator"):
        Query("incident").where("number", "ENDSWITH", "1")


def test_query_empty_in_list_refused() -> None:
    """An IN list without values would match nothing or everything: refused."""
    with pytest.raises(ValueError, match="at least one"):
        Query(CMDB_CI).where_in(("name",), [])


def test_glide_time_utc_without_offset() -> None:
    """A datetime is written as UTC ``YYYY-MM-DD HH:mm:ss``; naive means UTC."""
    plus_two = timezone(timedelta(hours=2))
    assert glide_time(datetime(2026, 1, 9, 18, 20, 11, 999, tzinfo=plus_two)) == (
        "2026-01-09 16:20:11"
    )
    assert glide_time(datetime(2026, 1, 9, 16, 20, 11)) == "2026-01-09 16:20:11"
    assert glide_time(datetime(2026, 1, 9, 16, 20, 11, tzinfo=UTC)) == "2026-01-09 16:20:11"


def test_fields_param_lists_correlation_and_sys_id() -> None:
    """The fields read for an upsert include correlation_id and sys_id."""
    fields = fields_param("change_request").split(",")
    assert {"sys_id", "number", "correlation_id", "sys_updated_on", "state"} <= set(fields)
    with pytest.raises(ValueError, match="table"):
        fields_param("sys_user_group")


def test_fields_param_reads_users_but_writable_refuses_them() -> None:
    """Users are read (a CI owner's sys_id, by e-mail or user name), never written."""
    assert {"sys_id", "email", "user_name"} <= set(fields_param("sys_user").split(","))
    with pytest.raises(ValueError, match="sys_user"):
        writable("sys_user", {"email": "x@example.com"})


def test_writable_refuses_system_fields() -> None:
    """Warden writes work notes and states, never sys_id or number."""
    assert writable("change_request", {"work_notes": "x", "state": "3"}) == {
        "work_notes": "x",
        "state": "3",
    }
    with pytest.raises(ValueError, match="sys_id"):
        writable("change_request", {"sys_id": "0" * 32})
    with pytest.raises(ValueError, match="number"):
        writable("incident", {"number": "INC0010001"})
