"""`make test` with every tool replaced by a stub that logs its arguments: the order of
the suites, and a failing suite failing `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$*" in *"$STUB_FAIL"*) exit 1 ;; esac
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make_test(tmp_path: Path, fail: str) -> tuple[int, list[str]]:
    """Run `make test` on stubs; the stub whose arguments contain `fail` fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ruff", "mypy", "pytest", "python"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    stamp = bin_dir / ".installed"
    stamp.touch()  # newer than pyproject.toml: nothing to install
    log = tmp_path / "log"
    log.touch()
    result = subprocess.run(
        ["make", "--no-print-directory", f"BIN={bin_dir}", f"STAMP={stamp}", "test"],
        cwd=ROOT,
        # Without the flags of a make that runs this test: under `make -k test`, the
        # inner make would inherit -k and go on past the failure it is meant to stop at.
        env={
            **{k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")},
            "STUB_LOG": str(log),
            "STUB_FAIL": fail,
        },
        capture_output=True,
        timeout=60,
    )
    return result.returncode, log.read_text().splitlines()


def position(calls: list[str], needle: str) -> int:
    return next(n for n, call in enumerate(calls) if needle in call)


def test_the_cheap_and_independent_suites_run_before_postgresql(tmp_path: Path) -> None:
    status, calls = make_test(tmp_path, fail="no stub fails")
    assert status == 0
    postgres = position(calls, "convostack.testing.postgres")
    for earlier in (
        "ruff check", "mypy", "tests/unit", "library", "server", "tests/live", "tests/ui",
    ):  # fmt: skip
        assert position(calls, earlier) < postgres, calls


@pytest.mark.parametrize("fail", ["tests/live", "convostack.testing.postgres", "tests/unit"])
def test_a_failing_suite_fails_make_test(tmp_path: Path, fail: str) -> None:
    status, calls = make_test(tmp_path, fail=fail)
    assert status != 0
    assert fail in calls[-1]  # nothing ran after the failure


def test_a_postgresql_failure_does_not_hide_the_live_result(tmp_path: Path) -> None:
    status, calls = make_test(tmp_path, fail="convostack.testing.postgres")
    assert status != 0
    assert any("tests/live" in call for call in calls)
