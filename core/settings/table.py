"""README's configuration table, generated from the settings model (``python app.py settings``)."""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

from pydantic import BaseModel, SecretStr

from core.settings import Settings, env_name


def settings_table() -> str:
    """README's configuration table (Markdown), generated from the model's fields."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if _model_of(field.annotation) is None:
            default = [] if field.default_factory is not None else field.default
            rows.append(_row(env_name((name,)), default, field.description))
        else:
            rows.extend(_nested_rows(f"WARDEN_{name.upper()}", field.annotation))
    return "\n".join(rows) + "\n"


def _nested_rows(prefix: str, annotation: Any) -> list[str]:
    """The rows of a sub-model's fields, ``PREFIX__FIELD``, sub-sub-models flattened too."""
    model, rows = _model_of(annotation), []
    assert model is not None
    for name, field in model.model_fields.items():
        variable = f"{prefix}__{name.upper()}"
        if _model_of(field.annotation) is not None:
            rows.extend(_nested_rows(variable, field.annotation))
        else:
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            rows.append(_row(variable, default, field.description))
    return rows


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings sub-model of a field's annotation (``Model`` or ``Model | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _row(variable: str, default: Any, description: str | None) -> str:
    if isinstance(default, SecretStr):
        shown = "(empty)" if not default.get_secret_value() else "(set)"
    elif isinstance(default, Enum):
        shown = f"`{default.value}`"
    elif default in (None, "", []):
        shown = "(empty)"
    else:
        shown = "`{}`".format(str(default).replace("|", "\\|"))
    return f"| `{variable}` | {shown} | {description or ''} |"
