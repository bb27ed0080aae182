"""What a server imports to start: the libraries of optional capabilities (the MCP SDK,
the cipher of sealed summaries, embedding and PDF libraries, the browser test's driver)
load on first use, not at start, where each would cost start-up time and idle memory."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mcp", "cryptography", "onnxruntime", "tokenizers", "pypdf", "playwright", "numpy")


def test_starting_a_server_imports_no_optional_library() -> None:
    probe = (
        "import sys, convostack.app, convostack.stack, convostack.server, convostack.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
