"""Sealed state: content the server hands to clients that they can carry back but can
neither read nor forge (a compaction's summary). AES-256-GCM, with a key from the
`sealing_key` setting or, when it is not set, one made once and kept in the data folder
(so it survives restarts; replicas on several machines must share `sealing_key`)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

KEY_FILE = "sealing.key"
_NONCE = 12
_VERSION = b"cs1."  # a prefix, so a future key or format can be told apart


class SealBroken(Exception):
    """Content that was not sealed by this server's key, or was changed since."""


class Sealer:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes")
        self._key = key
        self._cipher: Any = None  # made on first use: `cryptography` loads in ~50 ms

    @property
    def _aead(self) -> Any:
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def seal(self, payload: dict[str, Any], purpose: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, orjson.dumps(payload), purpose.encode())
        return (_VERSION + base64.urlsafe_b64encode(nonce + sealed)).decode()

    def open(self, token: str, purpose: str) -> dict[str, Any]:
        raw = token.encode()
        if not raw.startswith(_VERSION):
            raise SealBroken("not sealed by this server")
        from cryptography.exceptions import InvalidTag

        try:
            blob = base64.urlsafe_b64decode(raw[len(_VERSION) :])
            plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], purpose.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealBroken("changed, or sealed by another key") from None
        payload: dict[str, Any] = orjson.loads(plain)
        return payload


def load_key(configured: str | None, home: Path) -> bytes:
    """The configured key (base64 of 32 bytes), else the data folder's, made if missing."""
    if configured:
        key = base64.b64decode(configured)
        if len(key) != 32:
            raise ValueError("sealing_key must be the base64 of 32 random bytes")
        return key
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:  # exclusive: processes starting together keep whichever key came first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(base64.b64encode(key))
            return key
    for _ in range(100):  # another process may be writing it this very moment
        key = base64.b64decode(path.read_bytes())
        if len(key) == 32:
            return key
        time.sleep(0.01)
    raise ValueError(f"{path} does not hold a sealing key; delete it or set sealing_key")
