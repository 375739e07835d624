"""YAML read with the position of every value, so a bad value can be named by its line.

PyYAML's composer keeps a start mark on each node; ``load_positioned`` turns the node tree
into plain Python data (safe tags only) and a map from each value's path to its mark. A key
that appears twice in one mapping is an error here (PyYAML would silently keep the last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """Where something is in the file, 1-based as editors count."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Position:
        """The position of a PyYAML mark (which counts from 0)."""
        return cls(mark.line + 1, mark.column + 1)


class YamlProblem(ValueError):
    """The text is not YAML we can read; ``position`` says where."""

    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class Positioned:
    """Plain data read from YAML, with where each value and each mapping key starts."""

    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Position:
        """Where the value at ``path`` starts (its key's position with ``key``).

        A path that is not in the file (a missing field) gives its nearest enclosing value.
        """
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return Position(1, 1)


def load_positioned(text: str) -> Positioned:
    """Parse one YAML document; ``YamlProblem`` on a syntax error or a repeated key.

    An empty document gives ``data`` None.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position.of(mark) if mark is not None else Position(1, 1)
        raise YamlProblem(f"not valid YAML: {exc.problem or exc.context}", position) from None
    result = Positioned(None)
    if root is not None:
        result.data = _plain(root, (), result, yaml.SafeLoader(""))
    return result


def _plain(node: Node, path: Path, out: Positioned, loader: yaml.SafeLoader) -> Any:
    out.values[path] = Position.of(node.start_mark)
    if isinstance(node, MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            where = Position.of(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("a key must be plain text", where)
            key = str(key_node.value)
            if key in mapping:
                raise YamlProblem(f"duplicate key {key!r}", where)
            out.keys[(*path, key)] = where
            mapping[key] = _plain(value_node, (*path, key), out, loader)
        return mapping
    if isinstance(node, SequenceNode):
        return [_plain(item, (*path, i), out, loader) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc.problem}", out.values[path]) from None
