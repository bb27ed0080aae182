"""Server-side tools run against a real MCP server (the `mcp` SDK's, on 127.0.0.1) and
the fake upstream scripted to call its tools. The convostack under test (library or
spawned server, SQLite or PostgreSQL per --db) allows exactly that MCP server's URLs, and
configures it once more under the label `configured`, with a header from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx2
import openai
import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.mcp_server import McpTestServer, mcp_test_server
from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import Target, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream

CONFIGURED_TOKEN = "configured-token-8472"


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield Upstream(url)


@pytest.fixture(scope="package")
def mcp() -> Iterator[McpTestServer]:
    with mcp_test_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_records(upstream: Upstream, mcp: McpTestServer) -> None:
    upstream.reset()
    mcp.reset()


@pytest.fixture(scope="package")
def stack_target(
    request: pytest.FixtureRequest, upstream: Upstream, mcp: McpTestServer
) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    os.environ["MCP_TEST_TOKEN"] = CONFIGURED_TOKEN  # read by the config, in either mode
    root = mcp.url.removesuffix("/mcp")
    settings = {
        "inference_mode": "live",  # the fake is the model: nothing to record
        "providers": [
            {"type": "openai_compat", "id": "fake", "base_url": upstream.url, "max_retries": 0},
        ],
        "mcp_url_allowlist": [root + "/", mcp.sse_url, "http://127.0.0.1:9/", upstream.url],
        "max_tool_iterations": 4,
        "tool_call_timeout_seconds": 1.5,
        "tool_connect_timeout_seconds": 2,
        "mcp_servers": [
            {"server_label": "configured", "server_url": mcp.url,
             "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"},
             "require_approval": "never"},
        ],
    }  # fmt: skip
    with open_target(spec, request.config.getoption("--db"), settings) as target:
        yield target


@pytest.fixture(scope="package")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client


@pytest.fixture(scope="package")
def client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    return stack_target.openai_client(http)


@pytest.fixture
def stack_config_is_local(request: pytest.FixtureRequest) -> None:
    """Once is enough for what does not depend on the target: in library mode only."""
    only_in_library_mode(request.config, "runs in library mode only")
