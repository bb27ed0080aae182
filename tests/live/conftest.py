"""Live tests run the real embedded model; anything else would test nothing here."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--inference-mode") == "live":
        return
    skip = pytest.mark.skip(reason="needs the real model: run with --inference-mode=live")
    for item in items:
        item.add_marker(skip)
