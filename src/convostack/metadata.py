"""Metadata: at most 16 string keys of up to 64 characters, values up to 512 characters."""

from __future__ import annotations

from typing import Any

from convostack.errors import InvalidRequestError, invalid_type

MAX_KEYS = 16
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 512


def check_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Validate a metadata object; `None` means empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    if len(value) > MAX_KEYS:
        raise InvalidRequestError(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{MAX_KEYS} properties, but got an object with {len(value)} properties instead.",
            code="object_above_max_properties",
            param=param,
        )
    for key, item in value.items():
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidRequestError(
                f"Invalid '{param}': key '{key[:80]}' is too long. Expected keys of at most "
                f"{MAX_KEY_LENGTH} characters, but got {len(key)} characters instead.",
                code="string_above_max_length",
                param=f"{param}.{key[:80]}",
            )
        if not isinstance(item, str):
            raise invalid_type(f"{param}.{key}", "a string", item)
        if len(item) > MAX_VALUE_LENGTH:
            raise InvalidRequestError(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum "
                f"length {MAX_VALUE_LENGTH}, but got a string with length {len(item)} instead.",
                code="string_above_max_length",
                param=f"{param}.{key}",
            )
    return value
