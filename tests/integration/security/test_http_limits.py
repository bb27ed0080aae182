"""Unauthenticated resource use at the HTTP level (issue 12, point 4): oversized heads and
URLs, slow heads and bodies, idle sockets past the connection cap, and SIGTERM under all
of it. Each test is the attack, bounded in time, against a spawned `convostack serve` of
its own (these live below the ASGI app, so in-process mode has nothing to test) with
small limits; `/v1/health` is timed meanwhile: it must keep answering within 0.5 s."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from convostack.testing.stack import free_port, server_process
from convostack.testing.upstream import FAKE_MODEL, Upstream

MAX_CONNECTIONS = 24
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
HTTP_LIMITS = {
    "max_connections": MAX_CONNECTIONS,
    "max_header_bytes": 16384,
    "max_header_count": 50,
    "max_url_bytes": 4096,
    "header_timeout_seconds": HEADER_TIMEOUT,
    "body_timeout_seconds": BODY_TIMEOUT,
    "keep_alive_timeout_seconds": 1.0,
    "shutdown_grace_seconds": 2,
}


@contextlib.contextmanager
def _serve(home: Path, settings: dict[str, Any]) -> Iterator[tuple[Any, int]]:
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({**settings, **HTTP_LIMITS,
                                      "db": f"sqlite:///{home / 'http.db'}"}))  # fmt: skip
    port = free_port()
    with server_process(port, home, ("--config", str(config))) as process:
        yield process, port


@dataclass
class Served:
    port: int
    home: Path
    pid: int

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        return int(kib) / 1024

    def log(self) -> Path:
        return next(self.home.glob("server-*.log"))


@pytest.fixture(scope="module")
def server(settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("http-limits")
    with _serve(home, settings) as (process, port):
        yield Served(port, home, process.pid)


@pytest.fixture
def port(server: Served) -> int:
    return server.port


class HealthProbe:
    """Times GET /v1/health on fresh connections, back to back, while a test attacks."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/v1/health"
        self.times: list[float] = []
        self.failures: list[int | str] = []  # what came instead of a 200
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            status: int | str
            try:
                status = httpx2.get(self.url, timeout=5).status_code
            except httpx2.TransportError as exc:
                status = f"{type(exc).__name__}: {exc}"
            if status != 200:
                self.failures.append(status)
            self.times.append(time.monotonic() - started)
            time.sleep(0.02)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert self.times, "/v1/health was never answered"
        assert self.failures == []
        assert max(self.times) < 0.5, f"/v1/health took {max(self.times):.2f} s"


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _answer(sock: socket.socket, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the answer on `sock`, read until the server closes."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _send_head(port: int, head: bytes) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    with _connect(port) as sock:
        with contextlib.suppress(ConnectionError):
            sock.sendall(head)
        status, body = _answer(sock)
    return status, body, time.monotonic() - started


def test_two_mib_of_headers_are_refused_fast_with_431(port: int) -> None:
    filler = b"x-filler: " + b"a" * (2 * 1024 * 1024) + b"\r\n"  # one header: none ends
    with HealthProbe(port):
        status, body, took = _send_head(
            port, b"GET /v1/health HTTP/1.1\r\nhost: x\r\n" + filler + b"\r\n"
        )
    assert status == 431
    assert body["error"]["code"] == "request_header_fields_too_large"
    assert "max_header_bytes" in body["error"]["message"]
    assert took < 2


def test_sixty_four_mib_of_headers_cost_the_server_no_memory(server: Served) -> None:
    before = server.rss_mib()
    piece = b"a" * (1024 * 1024)
    # Refused and dropped: the sending ends in a reset, at the latest.
    with HealthProbe(server.port), _connect(server.port) as sock, contextlib.suppress(OSError):
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nhost: x\r\nx-filler: ")
        for _ in range(64):
            sock.sendall(piece)
    assert server.rss_mib() - before < 16


def test_too_many_headers_are_refused_with_431(port: int) -> None:
    many = b"".join(b"x-h%d: 1\r\n" % n for n in range(200))
    status, body, _ = _send_head(port, b"GET /v1/health HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
    assert status == 431
    assert "max_header_count" in body["error"]["message"]


@pytest.mark.parametrize("size", [5000, 2 * 1024 * 1024])  # within the head's limit, past it
def test_a_long_url_is_refused_fast_with_414(port: int, size: int) -> None:
    with HealthProbe(port):
        status, body, took = _send_head(
            port, b"GET /v1/health?" + b"a" * size + b" HTTP/1.1\r\nhost: x\r\n\r\n"
        )
    assert status == 414
    assert body["error"]["code"] == "url_too_long"
    assert "max_url_bytes" in body["error"]["message"]
    assert took < 2


def test_a_head_sent_a_byte_at_a_time_gets_408_after_the_header_timeout(port: int) -> None:
    with HealthProbe(port), _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(40):  # 8 s of one byte every 0.2 s, until an answer comes
                sock.sendall(b"x")
                if select.select([sock], [], [], 0.2)[0]:
                    break
        status, body = _answer(sock)
        took = time.monotonic() - started
    assert status == 408
    assert "header_timeout_seconds" in body["error"]["message"]
    # The server's clock starts at the connection, a little before ours did.
    assert HEADER_TIMEOUT - 0.1 <= took < HEADER_TIMEOUT + 2


def test_idle_sockets_past_the_cap_do_not_starve_clients_and_are_closed(port: int) -> None:
    idle = [_connect(port) for _ in range(MAX_CONNECTIONS * 3)]
    try:
        with HealthProbe(port):  # fresh connections, each past the cap
            time.sleep(0.5)
        # Each idle socket is closed by then: evicted, or past the header timeout.
        time.sleep(HEADER_TIMEOUT + 1)
        for sock in idle:
            sock.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()


def test_a_stalled_body_is_dropped_after_the_body_timeout_without_a_traceback(
    server: Served, headers_a: dict[str, str]
) -> None:
    with _connect(server.port) as sock:
        started = time.monotonic()
        head = ("POST /v1/conversations HTTP/1.1\r\nhost: x\r\n"
                f"authorization: {headers_a['authorization']}\r\n"
                "content-type: application/json\r\ncontent-length: 1000\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + b'{"metadata": {')
        sock.settimeout(HEADER_TIMEOUT + BODY_TIMEOUT + 3)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""
        assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 2
    time.sleep(0.2)
    log = server.log().read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log


def _slow_turn(port: int, headers: dict[str, str], seconds: float) -> httpx2.Response:
    body = {"model": FAKE_MODEL, "input": f"slow:{seconds}"}
    return httpx2.post(f"http://127.0.0.1:{port}/v1/responses", json=body,
                       headers=headers, timeout=30)  # fmt: skip


def test_when_every_connection_has_a_request_running_a_new_one_gets_503(
    port: int, upstream: Upstream, headers_a: dict[str, str]
) -> None:
    with concurrent.futures.ThreadPoolExecutor(MAX_CONNECTIONS) as pool:
        turns = [pool.submit(_slow_turn, port, headers_a, 3) for _ in range(MAX_CONNECTIONS)]
        deadline = time.monotonic() + 20
        while len(upstream.chat_requests()) < MAX_CONNECTIONS:
            assert time.monotonic() < deadline, "the turns never reached the upstream"
            time.sleep(0.05)
        started = time.monotonic()
        refused = httpx2.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert time.monotonic() - started < 0.5
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "server_busy"
        assert all(turn.result().status_code == 200 for turn in turns)
    assert httpx2.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200


def test_sigterm_under_load_stops_within_the_grace_period(
    settings: dict[str, Any], tmp_path: Path, upstream: Upstream, headers_a: dict[str, str]
) -> None:
    grace = int(HTTP_LIMITS["shutdown_grace_seconds"])
    with _serve(tmp_path, settings) as (process, port):
        idle = [_connect(port) for _ in range(MAX_CONNECTIONS * 2)]
        slow_head = _connect(port)
        slow_head.sendall(b"GET /v1/health HTTP/1.1\r\n")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            turns = [pool.submit(_slow_turn, port, headers_a, 30) for _ in range(4)]
            deadline = time.monotonic() + 20
            while len(upstream.chat_requests()) < 4:
                assert time.monotonic() < deadline, "the turns never reached the upstream"
                time.sleep(0.05)
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=grace + 10) == 0
            assert time.monotonic() - stopped_at < grace + 3
            assert all(turn.result().status_code == 503 for turn in turns)
        for sock in [*idle, slow_head]:
            sock.close()


def _leave_mid_stream(port: int, headers: dict[str, str], path: str, body: dict[str, Any]) -> None:
    with httpx2.stream("POST", f"http://127.0.0.1:{port}{path}", json=body, headers=headers,
                       timeout=10) as response:  # fmt: skip
        assert response.status_code == 200
        next(response.iter_bytes())  # the first event, then the client goes


def test_clients_that_leave_mid_upload_or_mid_stream_are_logged_without_a_traceback(
    server: Served, headers_a: dict[str, str]
) -> None:
    port = server.port
    log_file = server.log()
    logged = len(log_file.read_text())
    with _connect(port) as sock:  # half a body, then gone
        head = ("POST /v1/responses HTTP/1.1\r\nhost: x\r\n"
                f"authorization: {headers_a['authorization']}\r\n"
                "content-type: application/json\r\ncontent-length: 5000\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + b'{"model": "' + b"m" * 2000)
    drip = [{"role": "user", "content": "drip:0.3"}]
    _leave_mid_stream(port, headers_a, "/v1/chat/completions",
                      {"model": FAKE_MODEL, "messages": drip, "stream": True})  # fmt: skip
    _leave_mid_stream(port, headers_a, "/v1/responses",
                      {"model": FAKE_MODEL, "input": "drip:0.3", "stream": True})  # fmt: skip
    time.sleep(1.5)  # the drips the server was still sending when the clients left
    log = log_file.read_text()[logged:]
    assert "client disconnected" in log  # the upload
    assert "the client left before its end" in log  # the chat stream
    assert "Traceback" not in log
    assert " ERROR " not in log
