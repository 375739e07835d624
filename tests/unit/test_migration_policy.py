"""Migrations expand, then contract: nothing the previous release still uses is removed.

During a rolling or blue/green upgrade the new schema serves the old release's replicas too,
so an ``upgrade()`` may only add. Dropping or renaming a table or column, tightening a column
(``nullable=False``, a new type), or adding a NOT NULL column without a ``server_default``
breaks the old code; such a step is allowed only as a *contract* step, declared by the
migration in a module-level ``CONTRACT`` mapping each target (``"table"`` or
``"table.column"``) to the earlier revision from whose release on Warden no longer used it::

    CONTRACT = {"incidents.number": "0012"}  # unused since revision 0012's release

The checks read the migrations' source (``ast``); nothing is imported or run. The rule is
documented in docs/deploy.md (*Rolling and blue/green upgrades*).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.store import (  # noqa: F401 - each area's tables join the metadata
    schema_budgets,
    schema_costs,
    schema_delta,
    schema_evidence,
    schema_links,
)
from core.store.schema import metadata

VERSIONS = Path(__file__).resolve().parents[2] / "core" / "migrations" / "versions"
_SQL_WORDS = ("DROP ", "RENAME ", "TRUNCATE ")


@dataclass
class Migration:
    """One migration file as the policy sees it."""

    revision: str
    down_revision: str | None
    contract: dict[str, str]
    breaking: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)


def _literal(node: ast.AST | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _arg(call: ast.Call, index: int, name: str) -> object:
    node = call.args[index] if len(call.args) > index else _keyword(call, name)
    return _literal(node)


def _columns(call: ast.Call) -> list[ast.Call]:
    """The ``sa.Column(...)`` calls among a call's arguments."""
    return [
        node
        for node in call.args
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Column"
    ]


def _reachable_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """``upgrade`` and every module function it calls, directly or not (never ``downgrade``)."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    todo, seen = ["upgrade"], set[str]()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions or name == "downgrade":
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                todo.append(node.func.id)
    return [functions[name] for name in sorted(seen)]


def _batch_tables(function: ast.FunctionDef) -> dict[str, str]:
    """``with op.batch_alter_table("t") as batch``: the table of each batch variable."""
    tables = {}
    for node in ast.walk(function):
        if isinstance(node, ast.With):
            for item in node.items:
                call, alias = item.context_expr, item.optional_vars
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "attr", "") == "batch_alter_table"
                    and isinstance(alias, ast.Name)
                ):
                    tables[alias.id] = str(_arg(call, 0, "table_name"))
    return tables


def _examine(call: ast.Call, table: str | None, found: Migration) -> None:
    """Record what ``call`` creates and which of its effects break the previous release."""
    verb = getattr(call.func, "attr", "")
    shift = 0 if table is not None else 1  # batch operations take no table argument
    table = table if table is not None else str(_arg(call, 0, "table_name"))
    if verb == "create_table":
        found.created.add(table)
        found.created.update(f"{table}.{_arg(col, 0, 'name')}" for col in _columns(call))
    elif verb == "add_column":
        for column in _columns(call):
            name = f"{table}.{_arg(column, 0, 'name')}"
            found.created.add(name)
            not_null = _literal(_keyword(column, "nullable")) is False
            if not_null and _keyword(column, "server_default") is None:
                found.breaking.append(name)
    elif verb in ("drop_table", "rename_table"):
        found.breaking.append(table)
    elif verb == "drop_column":
        found.breaking.append(f"{table}.{_arg(call, shift, 'column_name')}")
    elif verb == "alter_column":
        tightening = _literal(_keyword(call, "nullable")) is False
        if tightening or _keyword(call, "new_column_name") or _keyword(call, "type_"):
            found.breaking.append(f"{table}.{_arg(call, shift, 'column_name')}")
    elif verb == "execute":
        sql = str(_arg(call, 0, "sqltext") or "").upper()
        if any(word in sql for word in _SQL_WORDS):
            found.breaking.append(f"SQL: {sql.strip()[:60]}")


def examine(source: str) -> Migration:
    """What a migration's ``upgrade()`` creates and breaks, and what it declares."""
    tree = ast.parse(source)
    names = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    contract = _literal(names.get("CONTRACT")) or {}
    assert isinstance(contract, dict), "CONTRACT must be a dict literal"
    down = _literal(names.get("down_revision"))
    found = Migration(
        str(_literal(names.get("revision"))), str(down) if down else None, dict(contract)
    )
    for function in _reachable_functions(tree):
        batches = _batch_tables(function)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "op":
                    _examine(node, None, found)
                elif isinstance(owner, ast.Name) and owner.id in batches:
                    _examine(node, batches[owner.id], found)
    return found


def violations(migrations: list[Migration]) -> list[str]:
    """Every breach of expand-then-contract in a chain of migrations (oldest first)."""
    problems, earlier, created = [], list[str](), set[str]()
    for item in migrations:
        for target in item.breaking:
            since = item.contract.get(target)
            if since is None:
                problems.append(f"{item.revision}: {target} breaks the previous release")
            elif since not in earlier:
                problems.append(
                    f"{item.revision}: {target} contracted since {since}, not an earlier revision"
                )
        for target in sorted(set(item.contract) - set(item.breaking)):
            problems.append(f"{item.revision}: CONTRACT names {target}, which it does not remove")
        for target in sorted(set(item.contract) - created):
            problems.append(f"{item.revision}: CONTRACT names {target}, never created before")
        earlier.append(item.revision)
        created |= item.created
    return problems


def chain() -> list[Migration]:
    """The repository's migrations in revision order (each follows its down_revision)."""
    found = [examine(path.read_text(encoding="utf-8")) for path in VERSIONS.glob("[0-9]*.py")]
    by_parent = {item.down_revision: item for item in found}
    ordered, parent = [], None
    while parent in by_parent:
        ordered.append(by_parent[parent])
        parent = ordered[-1].revision
    assert len(ordered) == len(found), "the migrations do not form one unbranched chain"
    return ordered


HEADER = 'revision = "{rev}"\ndown_revision = {down!r}\n'


def migration(rev: str, down: str | None, body: str, contract: str = "") -> Migration:
    """A synthetic migration: ``body`` is the text of its ``upgrade()``."""
    source = HEADER.format(rev=rev, down=down) + contract + "\ndef upgrade():\n" + body
    source += "\ndef downgrade():\n    op.drop_table('everything')\n"
    return examine(source)


BASE = migration(
    "0001", None, "    op.create_table('t', sa.Column('a', sa.Integer), sa.Column('b', sa.Text))\n"
)


def test_repository_migrations_only_expand_or_contract_declared_targets() -> None:
    """Every migration in core/migrations keeps the previous release working."""
    assert violations(chain()) == []


def test_repository_contracted_targets_are_gone_from_the_schema() -> None:
    """What a contract step removes is no longer in the code's schema (nothing uses it)."""
    for item in chain():
        for target in item.contract:
            table, _, column = target.partition(".")
            known = metadata.tables.get(table)
            assert known is None or (column and column not in known.columns), target


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ("    op.drop_table('t')\n", "t"),
        ("    op.drop_column('t', 'a')\n", "t.a"),
        ("    op.rename_table('t', 'u')\n", "t"),
        ("    op.alter_column('t', 'a', new_column_name='c')\n", "t.a"),
        ("    op.alter_column('t', 'a', nullable=False)\n", "t.a"),
        ("    with op.batch_alter_table('t') as batch:\n        batch.drop_column('b')\n", "t.b"),
        ("    op.add_column('t', sa.Column('c', sa.Integer, nullable=False))\n", "t.c"),
        ("    _helper()\ndef _helper():\n    op.drop_column('t', 'b')\n", "t.b"),
    ],
)
def test_policy_breaking_step_without_contract_is_refused(body: str, target: str) -> None:
    """A drop, rename, tightening or NOT NULL add without CONTRACT is named as a breach."""
    assert violations([BASE, migration("0002", "0001", body)]) == [
        f"0002: {target} breaks the previous release"
    ]


def test_policy_raw_sql_drop_is_refused() -> None:
    """``op.execute("DROP …")`` cannot slip past the operation checks."""
    problems = violations([BASE, migration("0002", "0001", "    op.execute('drop table t')\n")])
    assert problems == ["0002: SQL: DROP TABLE T breaks the previous release"]


def test_policy_additive_steps_and_downgrades_pass() -> None:
    """Nullable or defaulted columns, new tables and indexes pass; downgrade() is not checked."""
    body = (
        "    op.add_column('t', sa.Column('c', sa.Integer))\n"
        "    op.add_column('t', sa.Column('d', sa.Integer, nullable=False, server_default='0'))\n"
        "    op.create_table('u', sa.Column('a', sa.Integer))\n"
        "    op.create_index('ix', 't', ['a'])\n"
    )
    assert violations([BASE, migration("0002", "0001", body)]) == []


def test_policy_contract_of_a_target_deprecated_earlier_passes() -> None:
    """A drop declared as a contract of something unused since an earlier revision passes."""
    unused = migration("0002", "0001", "    op.create_index('ix', 't', ['a'])\n")
    drop = migration(
        "0003", "0002", "    op.drop_column('t', 'b')\n", 'CONTRACT = {"t.b": "0002"}\n'
    )
    assert violations([BASE, unused, drop]) == []


def test_policy_contract_naming_itself_or_a_later_revision_is_refused() -> None:
    """Deprecating and dropping in one revision is no contract step: no release in between."""
    drop = migration(
        "0002", "0001", "    op.drop_column('t', 'b')\n", 'CONTRACT = {"t.b": "0002"}\n'
    )
    assert violations([BASE, drop]) == ["0002: t.b contracted since 0002, not an earlier revision"]


def test_policy_contract_entry_that_removes_nothing_is_refused() -> None:
    """A stale or misspelt CONTRACT entry is reported, so the marker stays truthful."""
    step = migration("0002", "0001", "    op.create_index('ix', 't', ['a'])\n")
    stale = migration(
        "0003",
        "0002",
        "    op.drop_column('t', 'b')\n",
        'CONTRACT = {"t.b": "0002", "t.x": "0002"}\n',
    )
    assert violations([BASE, step, stale]) == [
        "0003: CONTRACT names t.x, which it does not remove",
        "0003: CONTRACT names t.x, never created before",
    ]
