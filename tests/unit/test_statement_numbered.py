"""``Statement.numbered``: the ``:named`` text as asyncpg takes it (``$1``, ``$2``…)."""

from __future__ import annotations

from core.store.sql import Statement


def test_numbered_names_in_order_of_first_use_repeated_name_keeps_its_number() -> None:
    statement = Statement("SELECT :b, :a WHERE x = :b AND y = ANY(CAST(:a_list AS text[]))")
    assert statement.numbered == (
        "SELECT $1, $2 WHERE x = $1 AND y = ANY(CAST($3 AS text[]))",
        ("b", "a", "a_list"),
    )


def test_numbered_leaves_casts_and_times_alone() -> None:
    statement = Statement("SELECT '12:30'::time, :n::int, x::text FROM t")
    assert statement.numbered == ("SELECT '12:30'::time, $1::int, x::text FROM t", ("n",))
