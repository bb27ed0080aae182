"""Live tests run the real embedded model; anything else would test nothing here."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees every item of the session (`pytest tests` too),
    # not only the ones under its folder: skip only ours.
    if config.getoption("--inference-mode") == "live":
        return
    skip = pytest.mark.skip(reason="needs the real model: run with --inference-mode=live")
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)
