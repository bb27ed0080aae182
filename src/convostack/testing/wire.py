"""Strict checks of what the server sends against the `openai` package's own models.

The package's models accept unknown fields (so that old clients survive new servers);
a test wants the opposite: every field we send must be one the type defines, and every
field it requires must be there. `assert_exact` validates with the model (required
fields, types) and then walks the result: any field left in a model's `model_extra` is
one the type does not define.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter


def assert_exact(kind: Any, data: Any) -> Any:
    """`data` validated as `kind` (a model class or a union), with no unknown field."""
    value = TypeAdapter(kind).validate_python(data)
    extras = list(_extras(value, "$"))
    name = getattr(kind, "__name__", "event")
    assert not extras, f"fields the {name} type does not define: {extras}"
    return value


def _extras(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{name}" for name in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for n, entry in enumerate(value):
            found += _extras(entry, f"{path}[{n}]")
    elif isinstance(value, dict):
        for key, entry in value.items():
            found += _extras(entry, f"{path}.{key}")
    return found
