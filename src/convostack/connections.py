"""Limits on HTTP connections that uvicorn's httptools protocol does not have.

uvicorn reads request heads of any size (httptools keeps every byte of a header until its
end), grows the URL by concatenation (a 64 MiB URL is hundreds of copies), gives a fresh
connection all the time it likes to send its first byte and a started head all the time
it likes to finish, and its `limit_concurrency` refuses a request only once its head is
in, so idle sockets still pile up until the process runs out of file descriptors.

`GuardedHttpToolsProtocol` adds, per connection:

- a cap on the bytes of a request head (431), checked as the bytes arrive, so at most
  one read's worth (uvloop reads 256 KiB) is held beyond it; within that, caps on its
  URL (414) and on its number of headers (431);
- a deadline for a whole request head, counted from the connection or from the first
  byte after an idle keep-alive (408), and a longest silence while a body arrives (the
  connection is closed: the endpoint sees the client gone);
- a cap on the connections of the process: past it, the connection idle the longest
  (no request running) is closed to make room, and when every connection has a request
  running the new one gets a 503 at once.

Refusals are written in the OpenAI error body with `connection: close`, then the socket
lingers (its write side shut, what the client still sends read and dropped, for at most
LINGER_SECONDS or LINGER_BYTES) so the client reads the answer instead of a reset.

The timeouts are checked by one watchdog timer per connection rather than timers armed
per request: the hot path only stores `loop.time()` when a head starts or a body piece
arrives.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from convostack.errors import APIError, InvalidRequestError, ServiceUnavailableError

log = logging.getLogger(__name__)

LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024
BUSY_WARNING_SECONDS = 10.0
# File descriptors kept beyond max_connections: the listening socket, the database, the
# upstreams' pooled connections, log files.
SPARE_FILE_DESCRIPTORS = 256


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 1024
    max_header_bytes: int = 65536
    max_header_count: int = 100
    max_url_bytes: int = 8192
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    @property
    def watchdog_period(self) -> float:
        # A timeout is noticed at most a quarter of it late.
        return max(0.05, min(self.header_timeout, self.body_timeout) / 4)


class LimitedConfig(uvicorn.Config):
    """uvicorn's Config serving with GuardedHttpToolsProtocol under `limits`."""

    def __init__(self, app: Any, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(app, http=GuardedHttpToolsProtocol, **kwargs)
        self.connection_limits = limits
        # When a refusal for want of connections was last logged: one line per
        # BUSY_WARNING_SECONDS, however many are refused (a flood must not flood the log).
        self.busy_warned_at = -math.inf


# A connection's phase. Plain ints, compared on every read: an Enum costs more there.
_HEAD = 1  # waiting for (the rest of) a request head
_BODY = 2  # head in: body arriving, then the endpoint answering, then idle keep-alive
_LINGER = 3  # refused: answered, reading and dropping what still comes


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is in `error`."""

    def __init__(self, error: APIError):
        super().__init__(error.message)
        self.error = error


def _head_too_large(detail: str) -> APIError:
    return InvalidRequestError(
        f"Request header fields too large: {detail}.",
        code="request_header_fields_too_large",
        status=431,
    )


def _url_too_long(limits: ConnectionLimits) -> APIError:
    return InvalidRequestError(
        f"URL too long: the limit is {limits.max_url_bytes} bytes (setting max_url_bytes).",
        code="url_too_long",
        status=414,
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol with the limits above. What a request costs on top of uvicorn's
    own handling is this class's data_received and on_headers_complete; the rest runs
    per connection or per watchdog tick."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        found = getattr(config, "connection_limits", None)
        self.limits = found if isinstance(found, ConnectionLimits) else ConnectionLimits()
        self._phase = _HEAD
        self._since = 0.0  # when the head started, or the last body piece came
        self._head_bytes = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._dropped = 0

    # --- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._since = self.loop.time()
        if len(self.connections) >= self.limits.max_connections and not self._evict_idle():
            self.transport = transport
            config = self.config
            if isinstance(config, LimitedConfig) and (
                self._since - config.busy_warned_at > BUSY_WARNING_SECONDS
            ):
                config.busy_warned_at = self._since
                log.warning(
                    "refusing connections: %d open, all with a request running (setting "
                    "max_connections)",
                    len(self.connections),
                )
            busy = ServiceUnavailableError(
                "The server is handling as many connections as it allows (setting "
                "max_connections); retry shortly.",
                code="server_busy",
            )
            self._refuse(busy)
            return
        super().connection_made(transport)
        self._watchdog = self.loop.call_later(self.limits.watchdog_period, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def _idle(self) -> bool:
        """No request of this connection is being received or answered."""
        if self._phase == _HEAD:
            return True
        cycle = self.cycle
        return cycle is not None and cycle.response_complete and not cycle.more_body

    def _evict_idle(self) -> bool:
        """Closes the connection idle the longest; False when there is none."""
        idle = [
            c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol) and c._idle()
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._since)
        log.debug("closing an idle connection to make room for a new one (max_connections)")
        oldest.connections.discard(oldest)
        oldest.transport.close()
        return True

    # --- reading -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == _HEAD:
            self._head_bytes += len(data)
        elif phase == _BODY:
            cycle = self.cycle
            if cycle is None or cycle.more_body:
                self._since = self.loop.time()  # the body goes on
            else:
                # The request is in, so this is the next one's head (pipelined, if the
                # response is not done yet: counted all the same).
                self._head_bytes += len(data)
                if cycle.response_complete:
                    self._phase = _HEAD
                    self._since = self.loop.time()
        else:  # _LINGER
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.error)
            else:
                self.logger.info("invalid HTTP request received: %s", exc)
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._head_bytes > self.limits.max_header_bytes:
            # httptools hands the URL over as it comes: a URL still arriving is the cause.
            if len(self.url) > self.limits.max_url_bytes:
                self._refuse(_url_too_long(self.limits))
            else:
                self._refuse(
                    _head_too_large(
                        f"the request head passed {self.limits.max_header_bytes} bytes "
                        "(setting max_header_bytes)"
                    )
                )

    def on_headers_complete(self) -> None:
        # The URL and the header count are checked here, once: the head's byte limit has
        # bounded what they could hold while it arrived.
        limits = self.limits
        if len(self.url) > limits.max_url_bytes:
            raise _Refused(_url_too_long(limits))
        if len(self.headers) > limits.max_header_count:
            raise _Refused(
                _head_too_large(
                    f"more than {limits.max_header_count} headers (setting max_header_count)"
                )
            )
        self._phase = _BODY
        self._head_bytes = 0
        self._since = self.loop.time()
        super().on_headers_complete()

    # --- timeouts and refusals ---------------------------------------------------------

    def _check(self) -> None:
        self._watchdog = None
        if self.transport.is_closing():
            return
        waited = self.loop.time() - self._since
        if self._phase == _HEAD and waited > self.limits.header_timeout:
            if self._head_bytes:
                self._refuse(
                    InvalidRequestError(
                        f"Request timeout: the request head did not arrive within "
                        f"{self.limits.header_timeout:g} seconds (setting "
                        "header_timeout_seconds).",
                        code="request_timeout",
                        status=408,
                    )
                )
            else:
                self.transport.close()  # connected, said nothing: nobody to answer
            return
        if self._phase == _BODY and self.cycle is not None:
            if self.cycle.more_body and waited > self.limits.body_timeout:
                log.info(
                    "closing a connection whose request body stalled for %g seconds "
                    "(setting body_timeout_seconds)",
                    self.limits.body_timeout,
                )
                self.transport.close()
                return
            if self._idle() and waited > self.timeout_keep_alive + self.limits.body_timeout:
                # A backstop: uvicorn's keep-alive timer is armed when a response ends,
                # and a body that ended after its response (a 413) leaves none.
                self.transport.close()
                return
        self._watchdog = self.loop.call_later(self.limits.watchdog_period, self._check)

    def _refuse(self, error: APIError) -> None:
        """Answers `error` and closes, lingering so that the client reads the answer."""
        self.connections.discard(self)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a response still being written: no room to answer.
            self.transport.close()
            return
        self._phase = _LINGER
        self.parser = None  # type: ignore[assignment]  # drops what it buffered
        body = error.body_bytes()
        headers = [STATUS_LINE[error.status]]
        for name, value in (
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("connection", "close"),
            *error.headers().items(),
        ):
            headers.append(f"{name}: {value}\r\n".encode("latin-1"))
        if error.status == 503:
            headers.append(b"retry-after: 1\r\n")
        self.transport.write(b"".join(headers) + b"\r\n" + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def raise_file_limit(limits: ConnectionLimits) -> None:
    """Lets the process hold max_connections sockets (and its other files), as far as
    the hard limit allows; says so when it cannot."""
    needed = limits.max_connections + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
        if target < needed:
            log.warning(
                "max_connections is %d but this process may open only %d files "
                "(ulimit -n); lower max_connections or raise the limit",
                limits.max_connections,
                target,
            )
