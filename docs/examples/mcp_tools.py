"""MCP tools on the server, end to end, with nothing to install or configure: a real MCP
server (the `mcp` SDK's, from convostack.testing) and the fake upstream as the model,
convostack in this process, driven by the stock `openai` client.

    python docs/examples/mcp_tools.py

Point `server_url` at your own MCP server and `model` at a real model to do it for real.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import openai

from convostack.config import Config
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.mcp_server import mcp_test_server
from convostack.testing.stack import library_target


def main() -> None:
    with (
        mcp_test_server() as mcp,
        fake_upstream_server() as upstream,
        tempfile.TemporaryDirectory() as home,
    ):
        config = Config(
            home=Path(home),
            upstream=upstream,
            mcp_allow_private_urls=True,  # the MCP server here is on 127.0.0.1
        )
        with library_target(config) as target, target.http_client() as http:
            client = openai.OpenAI(base_url=target.base_url, api_key="none", http_client=http)
            tools: list[Any] = [{"type": "mcp", "server_label": "demo", "server_url": mcp.url}]
            conversation = client.conversations.create()
            # The fake model calls `add` when asked like this; the call needs approval.
            first = client.responses.create(
                model="fake-model", input='call add {"a": 20, "b": 22}', tools=tools,
                conversation=conversation.id,
            )  # fmt: skip
            request = first.output[-1]
            print("turn 1:", [item.type for item in first.output])
            second = client.responses.create(
                model="fake-model", tools=tools, conversation=conversation.id,
                input=[{"type": "mcp_approval_response", "approval_request_id": str(request.id),
                        "approve": True}],
            )  # fmt: skip
            call = second.output[0]
            print("turn 2:", [item.type for item in second.output])
            print("add(20, 22) =", getattr(call, "output", None))
            print("answer:", second.output_text)


if __name__ == "__main__":
    main()
