"""A request body's JSON value: one rule for every endpoint that reads one."""

from __future__ import annotations

import json
from typing import Any


def json_value(raw: bytes) -> Any:
    """The JSON value of ``raw``; ``json.JSONDecodeError`` when it is not JSON, and also when
    it is not UTF-8 (where ``json.loads`` would raise a ``UnicodeDecodeError``, which callers
    that answer "not JSON" would miss)."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise json.JSONDecodeError("Not UTF-8", "", 0) from None
