"""Per-call overhead of msgraph-sdk, cut in one place: applied when Warden builds its client.

Profiled (cProfile, 2,000 ``sites/{id}/lists/{id}/items`` POSTs against the Graph sandbox),
almost all the SDK's CPU per call went to two spots, both fixed here and nowhere else:

1. **Deserializer maps.** kiota's ``JsonParseNode._assign_field_values`` asks every model
   for ``get_field_deserializers()`` each time it reads one. msgraph-sdk's generated
   ``Entity.get_field_deserializers`` executes about 2,400 ``from .x import X`` statements
   (its discriminator's imports) before building a two-entry map, and every entity type
   reaches it through ``super()``: about 10 ms of CPU per listItem answer (the listItem and
   its ``fields``). The maps are the same for every instance of a class except for the
   instance itself: each value is a generated ``lambda n: setattr(self, ...)`` closing over
   ``self``. So the map is built once per class and, per call, its functions are re-made
   around the new instance's ``self`` cell (a few microseconds). The guard: a class is
   memoised only when every value is a plain function whose only link to the instance is
   a ``self`` closure cell (no defaults, no bound methods, nothing else holding it); any
   other class keeps calling the SDK's own method.
2. **URL templates.** ``RequestInformation.url`` expands its RFC 6570 template with
   std-uritemplate on every access (three times per call); the expansion is a pure
   function of the template and the (hashable) values, so it is cached (bounded LRU).

Both are process-wide (the SDK's classes are), idempotent and behaviour-preserving.
``hot_spot_present()`` tells whether the installed msgraph-sdk still has the import storm;
``tests/unit/test_graph_speedups.py`` fails when it no longer does, so this module can be
removed rather than carried.
"""

from __future__ import annotations

import dis
import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import kiota_abstractions.request_information as request_information
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.entity import Entity
from stduritemplate import StdUriTemplate

HOT_SPOT_IMPORTS = 100
"""``Entity.get_field_deserializers`` with at least this many imports is the hot spot."""

URL_CACHE_SIZE = 4096
"""Expanded URLs kept (distinct template and value combinations)."""

Deserializers = dict[str, Callable[[Any], None]]

_ORIGINAL_ASSIGN = JsonParseNode._assign_field_values
_ORIGINAL_ENTITY_MAP = Entity.get_field_deserializers
_MEMO_MARK = "_warden_memoised"
_templates: dict[type, Deserializers | None] = {}
"""Per class: the map with ``self`` cells emptied, or None when the class is unsafe."""


def hot_spot_present() -> bool:
    """True while msgraph-sdk's ``Entity.get_field_deserializers`` still imports en masse."""
    imports = sum(
        1 for op in dis.get_instructions(_ORIGINAL_ENTITY_MAP) if op.opname == "IMPORT_NAME"
    )
    return imports >= HOT_SPOT_IMPORTS


def _template(found: Mapping[str, Any], instance: object) -> Deserializers | None:
    """``found`` with each ``self`` cell emptied; None if a value holds ``instance`` otherwise."""
    template: Deserializers = {}
    for name, function in found.items():
        if not isinstance(function, types.FunctionType) or function.__defaults__:
            return None
        cells = function.__closure__ or ()
        names = function.__code__.co_freevars
        emptied = []
        for free, cell in zip(names, cells, strict=True):
            held = cell.cell_contents
            if held is instance and free != "self":
                return None
            emptied.append(types.CellType() if free == "self" else cell)
        if "self" not in names and any(cell.cell_contents is instance for cell in cells):
            return None
        template[name] = types.FunctionType(
            function.__code__, function.__globals__, function.__name__, None, tuple(emptied)
        )
    return template


def _bind(template: Deserializers, instance: object) -> Deserializers:
    """The template's functions re-made around ``instance``'s ``self`` cell."""
    cell = types.CellType(instance)
    bound: Deserializers = {}
    for name, function in template.items():
        names = function.__code__.co_freevars
        closure = tuple(
            cell if free == "self" else held
            for free, held in zip(names, function.__closure__ or (), strict=True)
        )
        bound[name] = types.FunctionType(
            function.__code__, function.__globals__, function.__name__, None, closure
        )
    return bound


def memoised_field_deserializers(item: Parsable) -> Deserializers:
    """``item.get_field_deserializers()``, built once per class and re-bound to ``item``."""
    cls = type(item)
    try:
        template = _templates[cls]
    except KeyError:
        found = item.get_field_deserializers()
        _templates[cls] = _template(found, item)
        return found
    if template is None:
        return item.get_field_deserializers()
    return _bind(template, item)


class _MemoisedParsable:
    """A stand-in handed to kiota's ``_assign_field_values``: the item, with a memoised map."""

    __slots__ = ("_item",)

    def __init__(self, item: Parsable) -> None:
        """Wrap ``item``."""
        self._item = item

    def get_field_deserializers(self) -> Deserializers:
        """The item's map, memoised per class."""
        return memoised_field_deserializers(self._item)

    def __getattr__(self, name: str) -> Any:
        """Everything else (``additional_data``) is the item's."""
        return getattr(self._item, name)


def _assign_field_values(self: JsonParseNode, item: Parsable) -> None:
    """kiota's own ``_assign_field_values``, given the memoised map."""
    _ORIGINAL_ASSIGN(self, _MemoisedParsable(item))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def _expand(template: str, values: tuple[tuple[str, Any], ...]) -> str:
    """std-uritemplate's expansion, cached."""
    return str(StdUriTemplate.expand(template, dict(values)))


class _CachedUriTemplate:
    """``StdUriTemplate`` as kiota's ``RequestInformation`` uses it, with a cache."""

    @staticmethod
    def expand(template: str, substitutions: dict[str, Any]) -> str:
        """Expand ``template``; cached when every value is a str, int, float, bool or None."""
        values = tuple(sorted(substitutions.items()))
        if all(v is None or isinstance(v, (str, int, float, bool)) for _, v in values):
            return _expand(template, values)
        return str(StdUriTemplate.expand(template, substitutions))


def apply() -> None:
    """Install both speedups (idempotent); Warden's ``graph_client`` calls it."""
    if getattr(JsonParseNode, _MEMO_MARK, False):
        return
    JsonParseNode._assign_field_values = _assign_field_values  # type: ignore[method-assign]
    setattr(request_information, "StdUriTemplate", _CachedUriTemplate)  # noqa: B010
    setattr(JsonParseNode, _MEMO_MARK, True)


def applied() -> bool:
    """True once ``apply`` has run in this process."""
    return bool(getattr(JsonParseNode, _MEMO_MARK, False))
