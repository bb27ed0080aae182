"""docs/configuration.md is what the config classes say: regenerate it with
`convostack config --reference > docs/configuration.md` after changing a setting."""

from __future__ import annotations

from pathlib import Path

from convostack.config import Config
from convostack.config_reference import render

PAGE = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_up_to_date() -> None:
    assert PAGE.read_text() == render(), (
        "docs/configuration.md is stale: run "
        "'convostack config --reference > docs/configuration.md'"
    )


def test_every_setting_is_in_it_with_its_environment_variable() -> None:
    page = render()
    for name in Config.model_fields:
        assert f"| `{name}` |" in page
        assert f"`CONVOSTACK_{name.upper()}`" in page
