"""tests/live/conftest.py skips its own tests without --inference-mode=live, and no others."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LIVE_CONFTEST = Path(__file__).parents[1] / "live" / "conftest.py"


@pytest.fixture
def suites(pytester: pytest.Pytester) -> pytest.Pytester:
    """A copy of the live conftest in live/, beside a folder of ordinary tests."""
    live = pytester.mkpydir("live")
    (live / "conftest.py").write_text(LIVE_CONFTEST.read_text())
    (live / "test_model.py").write_text("def test_model() -> None:\n    pass\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    other = pytester.mkpydir("other")
    (other / "test_plain.py").write_text("def test_plain() -> None:\n    pass\n")
    return pytester


def test_without_live_mode_only_the_live_tests_are_skipped(suites: pytest.Pytester) -> None:
    result = suites.runpytest("live", "other", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*live/test_model.py*needs the real model*"])


def test_in_live_mode_nothing_is_skipped(suites: pytest.Pytester) -> None:
    result = suites.runpytest(
        "live", "other", "-p", "no:cacheprovider", "--inference-mode=live", "-rs"
    )
    result.assert_outcomes(passed=2)
