"""What every benchmark here needs: processes to spawn and measure, a plain HTTP client,
wrk, and percentiles. Everything is bounded: every wait has a deadline, every loop a count.

The machine may be shared, so every figure goes out with the 1-minute load average, and
throughput comes with the server's own CPU time per request (from /proc), a figure that
other processes on the machine disturb far less than requests per second.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
FAKE_MODEL = "fake-model"

JSONDict = dict[str, Any]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def emit(summary: Mapping[str, Any]) -> None:
    """A benchmark's JSON summary, on one line of stdout."""
    print(json.dumps(summary, sort_keys=False), flush=True)


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so that every server a benchmark started is stopped by
    the `finally` blocks on the way out (the default would leave them running)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stats_ms(samples_s: Sequence[float]) -> JSONDict:
    """min / median / p99 / max in milliseconds, and the sample count."""
    if not samples_s:
        return {"n": 0}
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "min_ms": round(ordered[0] * 1000, 3),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


# --- processes -----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (bounded: at most 256 processes)."""
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 256:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants."""
    total = 0
    for member in process_tree(pid):
        with suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE_SIZE
    return total


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU time of a process and its live descendants; with `reaped`, also
    that of the children it has waited for (PostgreSQL's backends that have ended)."""
    total = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if reaped and member == pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLOCK_TICKS


@dataclass
class Proc:
    """A spawned server: its process group is ended on stop, first with SIGTERM."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    healthy_after_s: float | None = None
    # Run after the process has stopped (e.g. a database the server needed).
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mib(self) -> float:
        return round(rss_bytes(self.pid) / 2**20, 1)

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 15.0) -> None:
        try:
            self._terminate(grace_s)
        finally:
            while self.cleanups:
                self.cleanups.pop()()

    def _terminate(self, grace_s: float) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


def spawn(
    name: str,
    argv: Sequence[str],
    logs: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start `argv` in its own process group (so stopping it stops its children too)."""
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name, popen, log_path, time.perf_counter())


def wait_healthy(proc: Proc, url: str, timeout_s: float = 120.0, poll_s: float = 0.005) -> float:
    """Poll `url` until it answers 200; the seconds since the process was spawned."""
    parsed = re.match(r"http://([^/:]+):(\d+)(/.*)", url)
    if parsed is None:
        raise ValueError(url)
    host, port, path = parsed.group(1), int(parsed.group(2)), parsed.group(3)
    try:
        return _poll_healthy(proc, host, port, path, timeout_s, poll_s)
    except BaseException:
        proc.stop()  # a server that never became healthy is not left running
        raise


def _poll_healthy(
    proc: Proc, host: str, port: int, path: str, timeout_s: float, poll_s: float
) -> float:
    url = f"http://{host}:{port}{path}"
    deadline = proc.started_at + timeout_s
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        conn = http.client.HTTPConnection(host, port, timeout=1)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                proc.healthy_after_s = time.perf_counter() - proc.started_at
                return proc.healthy_after_s
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(poll_s)
    raise RuntimeError(f"{proc.name}: no 200 from {url} within {timeout_s:g} s\n{proc.log_tail()}")


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fake_upstream(port: int, logs: Path) -> Proc:
    proc = spawn(
        "fake-upstream",
        [PYTHON, "-m", "convostack.testing.fake_upstream", "--port", str(port)],
        logs,
    )
    wait_healthy(proc, f"http://127.0.0.1:{port}/health", timeout_s=60)
    return proc


def convostack_serve(
    port: int,
    home: Path,
    upstream: str,
    logs: Path,
    db: str | None = None,
    workers: int = 1,
    settings: Mapping[str, str] = {},
) -> Proc:
    """`convostack serve`, uvicorn, the fake upstream; on the database `db` (a URL), by
    default SQLite under `home`; one process, or `workers` under a supervisor (their CPU
    and memory are counted together)."""
    inherited = {k: "" for k in os.environ if k.startswith("CONVOSTACK_")}
    # Room for the 10,000-item conversations of bench/latency.py and the turns on them
    # (where the setting exists; an unknown CONVOSTACK_ variable is ignored).
    env = {
        **inherited,
        "CONVOSTACK_HOME": str(home),
        "CONVOSTACK_MAX_ITEMS_PER_CONVERSATION": "100000",
        # Settings to measure, as BENCH_CONVOSTACK_<NAME> (e.g. a quota's cost).
        **{k.removeprefix("BENCH_"): v for k, v in os.environ.items()
           if k.startswith("BENCH_CONVOSTACK_")},
        **{f"CONVOSTACK_{name.upper()}": value for name, value in settings.items()},
    }  # fmt: skip
    argv = [
        str(Path(PYTHON).parent / "convostack"),
        "serve",
        "--port",
        str(port),
        "--db",
        db or f"sqlite:///{home / 'bench.db'}",
        "--upstream",
        upstream,
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    return spawn("convostack", argv, logs, env={k: v for k, v in env.items() if v})


# --- a plain HTTP client: keep-alive, stdlib, the same cost against every server ------


class Client:
    """One keep-alive connection; sequential calls; reconnects after a dropped one."""

    def __init__(self, base: str, timeout_s: float = 120.0, headers: Mapping[str, str] = {}):
        parsed = re.match(r"http://([^/:]+):(\d+)", base)
        if parsed is None:
            raise ValueError(base)
        self.host, self.port = parsed.group(1), int(parsed.group(2))
        self.timeout_s = timeout_s
        self.headers = {"content-type": "application/json", **headers}
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=self.headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200,)) -> Any:
        status, payload = self.call(method, path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path} -> {status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def timed(self, method: str, path: str, body: Any = None) -> tuple[float, int, bytes]:
        """One call's seconds, status and body; a call on a connection the server had
        closed while idle is made again on a new one, and only that one is timed."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            conn = self._connection()
            start = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=self.headers)
                response = conn.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            return time.perf_counter() - start, response.status, payload
        raise AssertionError("unreachable")

    def stream_first(self, path: str, body: Any, marker: bytes) -> tuple[float, float, float, int]:
        """POST a streaming request; seconds to the first byte, to the first line that
        contains `marker`, and to the end of the stream, and the status."""
        data = json.dumps(body).encode()
        self.close()  # a fresh connection: a stream may leave the old one unusable
        conn = self._connection()
        start = time.perf_counter()
        conn.request("POST", path, body=data, headers=self.headers)
        response = conn.getresponse()
        first_byte = time.perf_counter() - start
        first_marker = -1.0
        for _ in range(100_000):
            line = response.readline()
            if not line:
                break
            if first_marker < 0 and marker in line:
                first_marker = time.perf_counter() - start
        return first_byte, first_marker, time.perf_counter() - start, response.status


# --- wrk --------------------------------------------------------------------------------

WRK_SCRIPT = BENCH / "wrk" / "requests.lua"


@dataclass
class WrkRun:
    requests_per_s: float
    requests: int
    duration_s: float
    latency_ms: JSONDict
    errors: JSONDict
    server_cpu_us_per_request: float | None = None
    load_before: float = 0.0
    load_after: float = 0.0
    extra: JSONDict = field(default_factory=dict)

    def as_dict(self) -> JSONDict:
        return {
            "requests_per_s": self.requests_per_s,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "server_cpu_us_per_request": self.server_cpu_us_per_request,
            "load_before": self.load_before,
            "load_after": self.load_after,
            **self.extra,
        }


def write_requests(path: Path, requests: Sequence[tuple[str, str, Any]]) -> Path:
    """The request list wrk's script cycles through: METHOD, path, JSON body (or None)."""
    with path.open("w") as out:
        for method, target, body in requests:
            encoded = "" if body is None else json.dumps(body, separators=(",", ":"))
            if "\t" in target or "\n" in encoded:
                raise ValueError("tabs and newlines cannot appear in a wrk request line")
            out.write(f"{method}\t{target}\t{encoded}\n")
    return path


def wrk(
    base: str,
    requests_file: Path,
    *,
    duration_s: float,
    connections: int = 16,
    threads: int = 2,
    server: Proc | None = None,
    upstream: Proc | None = None,
    headers: Mapping[str, str] | None = None,
    database_cpu_s: Callable[[], float] | None = None,
) -> WrkRun:
    """wrk with `threads` threads and `connections` connections for `duration_s`, cycling
    through the requests in `requests_file`; the server's CPU is measured around it (and,
    apart, the upstream's and a separate database server's, from `database_cpu_s`)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does)")
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file), "BENCH_THREADS": str(threads)}
    for n, (name, value) in enumerate((headers or {}).items()):
        env[f"BENCH_HEADER_{n}"] = f"{name}: {value}"
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        base,
    ]
    load_before = load_average()
    cpu_before = server.cpu_s() if server else 0.0
    upstream_before = upstream.cpu_s() if upstream else 0.0
    database_before = database_cpu_s() if database_cpu_s else 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    cpu_after = server.cpu_s() if server else 0.0
    upstream_cpu = (upstream.cpu_s() - upstream_before) if upstream else 0.0
    database_cpu = (database_cpu_s() - database_before) if database_cpu_s else 0.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    count = int(raw["requests"])
    return WrkRun(
        requests_per_s=round(count / seconds, 1),
        requests=count,
        duration_s=round(seconds, 2),
        latency_ms={k: round(v / 1000, 3) for k, v in raw["latency_us"].items()},
        errors=raw["errors"],
        server_cpu_us_per_request=(
            round((cpu_after - cpu_before) * 1e6 / count, 1) if server and count else None
        ),
        load_before=load_before,
        load_after=load_average(),
        extra={
            "wrk_cpu_us_per_request": round(wrk_cpu * 1e6 / count, 1) if count else None,
            **(
                {"upstream_cpu_us_per_request": round(upstream_cpu * 1e6 / count, 1)}
                if upstream and count
                else {}
            ),
            **(
                {"database_cpu_us_per_request": round(database_cpu * 1e6 / count, 1)}
                if database_cpu_s and count
                else {}
            ),
        },
    )
