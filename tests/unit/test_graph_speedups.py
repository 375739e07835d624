"""``graph.speedups``: the memoised deserializer maps keep each instance's own values, a
class whose map holds the instance in another way is left alone, and the SDK hot spot the
module works around is still there (when it is gone, remove the module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiota_abstractions.serialization import Parsable, ParseNode, SerializationWriter
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.list_item import ListItem

from graph import speedups


class _Aliased(Parsable):
    """A model whose deserializers reach the instance through a name other than ``self``."""

    def __init__(self) -> None:
        """No value yet."""
        self.name: str | None = None
        self.additional_data: dict[str, Any] = {}

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> _Aliased:
        """A new instance."""
        return _Aliased()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        """One field, set on ``me`` (the instance under another name)."""
        me = self
        return {"name": lambda n: setattr(me, "name", n.get_str_value())}

    def serialize(self, writer: SerializationWriter) -> None:
        """Not used."""


def test_speedups_sdk_hot_spot_still_present() -> None:
    """msgraph-sdk's Entity map still runs its import storm; if not, drop graph/speedups.py."""
    assert speedups.hot_spot_present(), (
        "msgraph-sdk no longer imports in Entity.get_field_deserializers: "
        "remove graph/speedups.py's memoised maps"
    )


def test_memoised_map_is_bound_to_each_instance() -> None:
    """Two items read through the memoised map each get their own values."""
    speedups.apply()
    first = JsonParseNode({"id": "1", "fields": {"A": "x"}}).get_object_value(ListItem)
    second = JsonParseNode({"id": "2", "fields": {"A": "y"}}).get_object_value(ListItem)
    assert (first.id, second.id) == ("1", "2")
    assert first.fields is not None and second.fields is not None
    assert (first.fields.additional_data, second.fields.additional_data) == ({"A": "x"}, {"A": "y"})
    assert speedups._templates[ListItem] is not None


def test_memoised_map_skips_class_holding_instance_under_other_name() -> None:
    """A map that reaches the instance other than by ``self`` is never memoised."""
    speedups.apply()
    names = [JsonParseNode({"name": n}).get_object_value(_Aliased).name for n in "abc"]
    assert names == ["a", "b", "c"]
    assert speedups._templates[_Aliased] is None


def test_url_template_cache_expands_like_std_uritemplate() -> None:
    """The cached expansion gives the same URL for the same values, and new ones for new."""
    speedups.apply()
    template = "{+baseurl}/sites/{site%2Did}/lists/{list%2Did}/items"
    found = [
        speedups._CachedUriTemplate.expand(
            template, {"baseurl": "https://g/v1.0", "site%2Did": site, "list%2Did": "L 1"}
        )
        for site in ("a,b", "a,b", "c")
    ]
    assert found == [
        "https://g/v1.0/sites/a%2Cb/lists/L%201/items",
        "https://g/v1.0/sites/a%2Cb/lists/L%201/items",
        "https://g/v1.0/sites/c/lists/L%201/items",
    ]
