"""docs/rag.md's offline example runs as it is, with the real embedder and embedded model:
the document is indexed, found by search, searched by the model and cited. (What the
135M model says is not checked: only that it answered.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "rag.py"


def test_the_rag_example_runs_offline(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--stack-config") != "library":
        pytest.skip("the example runs convostack in its own process: once is enough")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, check=True
    )
    lines = done.stdout.splitlines()
    assert "indexed: completed" in lines
    assert any(line.startswith("search: ") and "handbook.md" in line for line in lines)
    assert any(line.startswith("answer: ") and len(line) > len("answer: ") for line in lines)
    assert "cited: handbook.md" in lines
