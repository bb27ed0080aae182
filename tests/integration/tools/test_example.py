"""The README's MCP example runs as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "mcp_tools.py"


def test_the_readme_mcp_example_runs(stack_config_is_local: None) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=True
    )
    assert "turn 2: ['mcp_call', 'message']" in done.stdout
    assert "add(20, 22) = 42" in done.stdout
