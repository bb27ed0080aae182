"""Keeping credentials out of what tenants and logs see.

Two sources of leaks: URLs the operator configured with credentials in them
(`http://user:password@host/v1`), which error messages quote, and text an upstream sends
back in its errors, which may quote our request, headers included (some proxies and
gateways do). `split_userinfo` takes the credentials out of a URL, to be sent as HTTP
basic auth rather than shown; a `Scrubber` bounds upstream text and replaces anything
in it that looks like a credential: the secrets it was given, URL userinfo, bearer and
basic tokens, `sk-...` keys, and the values of authorization or api-key fields.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "[redacted]"
# Upstream text relayed in one error message, at most (characters).
UPSTREAM_TEXT_CHARS = 2048
# Shorter configured secrets are not searched for verbatim (they would match ordinary
# words); the patterns below still catch them where they stand as credentials.
MIN_SECRET_CHARS = 4

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_PATTERNS = (
    # An echoed header or a JSON/YAML field: `Authorization: ...`, `"api_key": "..."`.
    re.compile(
        r"(?i)((?:proxy-)?authorization|x-api-key|api[_-]?key|password|secret|token)"
        r"([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+"
    ),
    re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\b(sk|pk|rk)(-)[A-Za-z0-9_-]{8,}"),
)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """`url` without its userinfo, and the user and password that were in it (decoded)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=host)), user, password


def strip_userinfo(text: str) -> str:
    """Every `scheme://user:password@` in `text` as `scheme://[redacted]@`."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def basic_credentials(user: str, password: str | None) -> str:
    """The token of an HTTP basic `Authorization` header."""
    return base64.b64encode(f"{user}:{password or ''}".encode()).decode()


class Scrubber:
    """Bounds text from an upstream and blanks what looks like a credential in it."""

    def __init__(self, secrets: Iterable[str | None] = (), limit: int = UPSTREAM_TEXT_CHARS):
        found = {s for s in secrets if s is not None and len(s) >= MIN_SECRET_CHARS}
        # Longest first, so that a secret containing another is blanked whole.
        self._secrets = sorted(found, key=len, reverse=True)
        self._limit = limit
        # Scrubbed before it is cut, on a margin beyond the limit: a secret across the
        # cut is blanked whole rather than left as a prefix.
        self._window = limit + max((len(s) for s in self._secrets), default=0) + 256

    def __call__(self, text: str) -> str:
        cut = len(text) > self._limit
        text = text[: self._window]
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = strip_userinfo(text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        if cut or len(text) > self._limit:
            text = text[: self._limit] + f"... (cut at {self._limit} characters)"
        return text
