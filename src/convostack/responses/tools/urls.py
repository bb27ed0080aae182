"""Which URLs a caller may make the server connect to, and keeping secrets out of text.

A caller-supplied `server_url` makes this server open a connection: an SSRF surface.
By default a URL must resolve to public addresses only: loopback, link-local (cloud
metadata at 169.254.169.254), private, multicast and unspecified addresses are refused,
and so is this server's own port, unless the operator allows private addresses
(`mcp_allow_private_urls`) or lists URL prefixes (`mcp_url_allowlist`), which are then the
only URLs allowed. Operator-configured servers are trusted as configured.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["REDACTED", "check_server_url", "scrub", "secret_values"]

from convostack.errors import InvalidRequestError
from convostack.redaction import MIN_SECRET_CHARS, REDACTED
from convostack.responses.tools.settings import ToolSettings


def _refused(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid '{param}': {why}", code="invalid_value", param=param)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_server_url(url: str, param: str, settings: ToolSettings) -> None:
    """Raise a 400 unless this server may connect to `url` for a caller."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(param, "expected an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise _refused(
            param,
            "a URL must not hold credentials; send them in 'headers' or 'authorization'.",
        )
    if settings.mcp_url_allowlist:
        if not any(url.startswith(prefix) for prefix in settings.mcp_url_allowlist):
            raise _refused(
                param,
                f"the URL {url!r} is not allowed by this server (setting mcp_url_allowlist).",
            )
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused(param, "the URL's port is not a number from 0 to 65535.") from None
    addresses = await _resolve(parts.hostname, port, param)
    for address in addresses:
        if (address, port) in _own(settings) or (
            not settings.mcp_allow_private_urls and _private(address)
        ):
            raise _refused(
                param,
                f"the URL {url!r} points to a private, loopback or link-local address "
                f"({address}), which this server does not connect to for callers (settings "
                "mcp_allow_private_urls, mcp_url_allowlist).",
            )


def _own(settings: ToolSettings) -> set[tuple[str, int]]:
    own = set(settings.own_addresses)
    for host, port in settings.own_addresses:
        if host in ("0.0.0.0", "::", "localhost"):
            own |= {("127.0.0.1", port), ("::1", port)}
    return own


async def _resolve(host: str, port: int, param: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise _refused(param, f"the host {host!r} could not be resolved.") from None
    return sorted({str(info[4][0]) for info in infos})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (header values, tokens) replaced, and nothing else:
    a tool's output is the tool's, so no pattern blanks what merely looks like a secret
    (`redaction.Scrubber` does that for error text)."""
    found = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def secret_values(headers: dict[str, str]) -> list[str]:
    """Each header value, and its token part (`Bearer abc` -> `abc` too)."""
    values: list[str] = []
    for value in headers.values():
        values.append(value)
        scheme, _, token = value.partition(" ")
        if token and scheme.isalpha():
            values.append(token)
    return values
