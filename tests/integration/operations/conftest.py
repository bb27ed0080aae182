"""The operator's routes run against a convostack of their own: one API key, metrics on,
the fake upstream behind a provider whose URL and key hold secrets, a provider nobody
listens at, and the MCP test server configured as `tools`. `http` sends no key unless a
test adds one (`KEY_HEADER`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from convostack.auth import hash_key
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.mcp_server import McpTestServer, mcp_test_server
from convostack.testing.plugin import configured_target
from convostack.testing.stack import Target, free_port
from convostack.testing.upstream import FAKE_MODEL

KEY = "sk-ops-0123456789abcdef"
KEY_HEADER = {"authorization": f"Bearer {KEY}"}
UPSTREAM_KEY = "sk-upstream-secret-0123456789"
URL_PASSWORD = "hunter2-in-the-url"


@pytest.fixture(scope="package")
def upstream_url() -> Iterator[str]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield url


@pytest.fixture(scope="package")
def mcp() -> Iterator[McpTestServer]:
    with mcp_test_server() as server:
        yield server


def operations_settings(upstream_url: str, mcp_url: str) -> dict[str, object]:
    with_userinfo = upstream_url.replace("http://", f"http://ops:{URL_PASSWORD}@")
    return {
        "inference_mode": "live",  # the fake is the model: nothing to record
        "api_keys": [{"sha256": hash_key(KEY), "principal": "ops"}],
        "metrics": True,
        "access_log": True,
        "mcp_servers": [
            {"server_label": "tools", "server_url": mcp_url, "require_approval": "never"}
        ],
        "providers": [
            {"type": "openai_compat", "id": "fake", "base_url": with_userinfo,
             "api_key": UPSTREAM_KEY, "max_retries": 0},
            {"type": "openai_compat", "id": "dead", "max_retries": 0, "models": ["dead-model"],
             "base_url": f"http://127.0.0.1:{free_port()}/v1", "connect_timeout": 1},
        ],
    }  # fmt: skip


@pytest.fixture(scope="package")
def stack_target(
    request: pytest.FixtureRequest,
    upstream_url: str,
    mcp: McpTestServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    db = request.config.getoption("--db") or (
        f"sqlite:///{tmp_path_factory.mktemp('operations') / 'test.db'}"
    )
    with configured_target(
        request.config, operations_settings(upstream_url, mcp.url), db
    ) as target:
        yield target


@pytest.fixture(scope="package")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client
