"""API keys: who is calling, as a principal, from `Authorization: Bearer <key>`.

Keys are configured as SHA-256 digests (`{sha256: <hex>, principal: team-a}` in the config
file), or as plaintext `key=principal` pairs in `CONVOSTACK_API_KEYS`, hashed as they are
loaded; a plaintext key is never kept. Several keys may share a principal. The principal
owns what its requests create: every store call is scoped by it, so another principal's
conversation, item or response answers exactly as a missing one does (404, never 403).

With keys configured, every `/v1` route except `/v1/health` needs a valid key: a missing
or wrong one is a 401 in the OpenAI error body. With none, the server is open and every
caller is the principal `default`.

The middleware is plain ASGI, since it runs on every request: one SHA-256 of the
presented key, one dict lookup, one constant-time comparison, and then the principal is
left in the ASGI scope for the routes (`http.principal`). The lookup is by a prefix of
the digest (a selector), the verification by `hmac.compare_digest` on the whole digest,
so neither the time a lookup takes nor the comparison reveals anything about a stored key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convostack.errors import APIError, AuthenticationError, RateLimitError
from convostack.http import DEFAULT_PRINCIPAL, PRINCIPAL_SCOPE_KEY
from convostack.limits import RateLimiter

log = logging.getLogger(__name__)

API_KEYS_ENV = "CONVOSTACK_API_KEYS"
MIN_KEY_LENGTH = 8
PRINCIPAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$"
OPEN_PATHS = frozenset({"/v1/health"})
_SELECTOR_BYTES = 8
_KEY_PATTERN = re.compile(r"^[!-~]+$")  # printable ASCII, no spaces
_BEARER = b"bearer "

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


class ApiKey(BaseModel):
    """One configured key: the SHA-256 of the key (hex), and the principal it acts as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Hex SHA-256 of the key; `convostack api-key` prints one for a new key.",
    )
    principal: str = Field(
        pattern=PRINCIPAL_PATTERN,
        description="Who the key acts as (a tenant): it owns what the key's requests create.",
    )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key: 256 bits, URL-safe."""
    return "sk-cs-" + secrets.token_urlsafe(32)


def parse_key_pairs(text: str) -> list[ApiKey]:
    """Plaintext `key=principal` pairs, separated by commas or whitespace, as hashed
    entries. Errors never quote a key."""
    entries = []
    for n, pair in enumerate(p for p in re.split(r"[,\s]+", text) if p):
        key, sep, principal = pair.rpartition("=")
        if not sep or not key:
            raise ValueError(
                f"entry {n + 1} is not of the form key=principal (keys are separated by "
                "commas or spaces)"
            )
        if len(key) < MIN_KEY_LENGTH or not _KEY_PATTERN.match(key):
            raise ValueError(
                f"the key of entry {n + 1} (principal '{principal}') must be at least "
                f"{MIN_KEY_LENGTH} printable ASCII characters without spaces or commas"
            )
        if not re.match(PRINCIPAL_PATTERN, principal):
            raise ValueError(
                f"the principal of entry {n + 1} must be 1 to 128 letters, digits or ._:@/- "
                "(starting with a letter or digit)"
            )
        entries.append(ApiKey(sha256=hash_key(key), principal=principal))
    return entries


def api_keys_input(value: Any) -> Any:
    """Config validator: a string (from the environment) is plaintext pairs to hash."""
    if isinstance(value, str):
        return parse_key_pairs(value)
    return value


def check_unique(entries: Sequence[ApiKey]) -> Sequence[ApiKey]:
    """Config validator: one key cannot act as two principals."""
    seen: dict[str, str] = {}
    for entry in entries:
        digest = entry.sha256.lower()
        if seen.setdefault(digest, entry.principal) != entry.principal:
            raise ValueError(
                f"the key with sha256 {digest[:12]}... is given to two principals "
                f"('{seen[digest]}' and '{entry.principal}'); give each its own key"
            )
    return entries


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redact(key: str) -> str:
    """How a wrong key is shown back: its ends, as OpenAI does, and never all of it."""
    if len(key) < 12:
        return "*" * min(len(key), 8)
    return f"{key[:3]}{'*' * min(len(key) - 7, 32)}{key[-4:]}"


class KeyTable:
    """The configured keys, by digest: the only place a presented key is checked."""

    def __init__(self, entries: Sequence[ApiKey]):
        self._by_selector: dict[bytes, list[tuple[bytes, str]]] = {}
        for entry in entries:
            digest = bytes.fromhex(entry.sha256)
            self._by_selector.setdefault(digest[:_SELECTOR_BYTES], []).append(
                (digest, entry.principal)
            )
        self.principals = frozenset(e.principal for e in entries)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_selector.values())

    def principal(self, key: bytes) -> str | None:
        digest = hashlib.sha256(key).digest()
        found = None
        for stored, principal in self._by_selector.get(digest[:_SELECTOR_BYTES], ()):
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


def bearer_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The key of an `Authorization: Bearer <key>` header; None when there is none."""
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() != _BEARER:
                return None
            key = value[7:].strip()
            return key or None
    return None


def authenticate(keys: KeyTable, headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The principal of the request's bearer key (HTTP, or a WebSocket's upgrade); an
    AuthenticationError when it has none, or none that is configured."""
    key = bearer_key(headers)
    found = keys.principal(key) if key is not None else None
    if found is None:
        raise unauthenticated(key)
    return found


class AuthMiddleware:
    """Authenticates `/v1` requests (when keys are configured), puts the principal in the
    scope, and applies the per-principal rate limit (when one is configured)."""

    def __init__(self, app: ASGIApp, keys: KeyTable | None, limiter: RateLimiter | None):
        self.app = app
        self.keys = keys
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        principal = DEFAULT_PRINCIPAL
        if self.keys is not None:
            try:
                principal = authenticate(self.keys, scope["headers"])
            except AuthenticationError as refused:
                await _send_error(send, refused)
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal
        if self.limiter is not None:
            announced = _content_length(scope["headers"])
            wait = self.limiter.take(principal, self.limiter.cost(announced or 0))
            if wait > 0:
                await _send_error(send, rate_limited(principal, self.limiter, wait))
                return
            if announced is None and self.limiter.bytes_per_token is not None:
                receive = _charging(receive, self.limiter, principal)
        await self.app(scope, receive, send)


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _charging(receive: Receive, limiter: RateLimiter, principal: str) -> Receive:
    """A body sent without a length (chunked) is charged as it arrives."""

    async def counted() -> Message:
        message = await receive()
        size = len(message.get("body", b""))
        if size:
            limiter.charge(principal, size / (limiter.bytes_per_token or size))
        return message

    return counted


def unauthenticated(key: bytes | None) -> AuthenticationError:
    if key is None:
        return AuthenticationError(MISSING_KEY, code="invalid_api_key")
    shown = redact(key.decode("ascii", "replace"))
    return AuthenticationError(
        f"Incorrect API key provided: {shown}. Ask this server's operator for a valid key, "
        "and send it as 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
    )


def rate_limited(principal: str, limiter: RateLimiter, wait: float) -> RateLimitError:
    weighed = (
        ""
        if limiter.bytes_per_token is None
        else f"; a request costs one more per {limiter.bytes_per_token} bytes of its body "
        "(setting rate_limit_bytes_per_token)"
    )
    return RateLimitError(
        f"Rate limit reached for '{principal}': {limiter.per_minute} requests per minute "
        f"(bursts of {limiter.burst}{weighed}). Please try again in "
        f"{math.ceil(wait * 1000)} ms.",
        retry_after=wait,
    )


async def _send_error(send: Send, error: APIError) -> None:
    body = error.body_bytes()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in error.headers().items()),
    ]
    if isinstance(error, AuthenticationError):
        headers.append((b"www-authenticate", b'Bearer realm="convostack"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def warn_if_open(host: str, keys: KeyTable | None) -> None:
    if keys is None and not is_loopback(host):
        log.warning(
            "no API keys are configured and the server listens on %s, beyond this machine: "
            "anyone who can reach it can read and write every conversation. Configure "
            "api_keys (or %s) to require keys.",
            host,
            API_KEYS_ENV,
        )
