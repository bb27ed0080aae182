"""Which MCP server URLs a caller may name: public addresses only, by default."""

from __future__ import annotations

import pytest

from convostack.errors import InvalidRequestError
from convostack.responses.tools.settings import ToolSettings
from convostack.responses.tools.urls import check_server_url, scrub, secret_values

DEFAULT = ToolSettings(own_addresses=(("0.0.0.0", 8321),))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/mcp",
        "http://localhost:9000/mcp",
        "http://[::1]/mcp",
        "http://10.1.2.3/mcp",
        "http://192.168.0.7/mcp",
        "http://172.16.0.1/mcp",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/mcp",
        "http://0.0.0.0/mcp",
        "http://224.0.0.1/mcp",
        "ftp://93.184.216.34/mcp",
        "http://user:secret@93.184.216.34/mcp",
        "http:///mcp",
    ],
)
async def test_private_loopback_link_local_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await check_server_url(url, "tools[0].server_url", DEFAULT)
    assert caught.value.param == "tools[0].server_url"
    assert "secret" not in caught.value.message


async def test_a_public_address_is_allowed() -> None:
    await check_server_url("https://93.184.216.34/mcp", "p", DEFAULT)


async def test_private_addresses_when_allowed_but_never_this_server() -> None:
    allowed = ToolSettings(mcp_allow_private_urls=True, own_addresses=(("0.0.0.0", 8321),))
    await check_server_url("http://127.0.0.1:9000/mcp", "p", allowed)
    with pytest.raises(InvalidRequestError):
        await check_server_url("http://127.0.0.1:8321/v1", "p", allowed)


async def test_an_allowlist_is_the_only_way_in() -> None:
    listed = ToolSettings(mcp_url_allowlist=("http://127.0.0.1:9000/",))
    await check_server_url("http://127.0.0.1:9000/mcp", "p", listed)
    with pytest.raises(InvalidRequestError):
        await check_server_url("https://93.184.216.34/mcp", "p", listed)


def test_secrets_are_scrubbed_from_text() -> None:
    secrets = secret_values({"Authorization": "Bearer tok-12345", "X-Key": "k-67890"})
    text = "server said: bad token tok-12345 with header Bearer tok-12345 and k-67890"
    assert scrub(text, secrets) == (
        "server said: bad token [redacted] with header [redacted] and [redacted]"
    )
