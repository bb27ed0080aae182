"""What base.py and files_base.py both need (base.py re-exports them)."""

from __future__ import annotations

from typing import Literal

Order = Literal["asc", "desc"]


class StoreError(Exception):
    """Base of the store's own exceptions; services turn them into API errors."""
