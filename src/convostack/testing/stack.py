"""Ways to reach a convostack under test, behind one shape: a base URL and an HTTP client.

- `library`: the app in this process, driven through an ASGI transport (no socket);
- a config file, a preset or `api=provider` pairs: the same, with those settings;
- `server[:CONFIG][:PORT]`: `convostack serve` started as a subprocess on a temp
  database (with CONFIG's settings), or the server already listening on PORT;
- a URL: any running OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import anyio.from_thread
import httpx2
import openai
import yaml
from starlette.types import ASGIApp

from convostack.app import create_app
from convostack.config import Config, file_settings
from convostack.stack import Stack
from convostack.testing.suites import ADHOC_APIS, STACK_PRESETS

HEALTH_TIMEOUT_SECONDS = 60.0


@dataclass
class Target:
    """Where the tests send requests."""

    mode: str
    base_url: str  # ends in /v1
    transport: httpx2.BaseTransport | None = None
    app: ASGIApp | None = None
    db: str | None = None  # the database URL of a local target (see testing/database.py)

    def openai_client(self, http: httpx2.Client, api_key: str = "k") -> openai.OpenAI:
        """The stock client, through `http`, with no retries (a test sees every error)."""
        return openai.OpenAI(
            base_url=self.base_url, api_key=api_key, http_client=http, max_retries=0
        )

    def http_client(self, **kwargs: object) -> httpx2.Client:
        root = self.base_url.removesuffix("/v1")
        return httpx2.Client(base_url=root, transport=self.transport, timeout=60, **kwargs)  # type: ignore[arg-type]

    def async_http_client(self) -> httpx2.AsyncClient:
        """An async client, for `openai.AsyncOpenAI`: in library mode each request goes
        to the app from a thread of its own, so concurrent requests overlap in the app
        as they would over sockets."""
        root = self.base_url.removesuffix("/v1")
        if self.transport is None:
            return httpx2.AsyncClient(base_url=root, timeout=60)
        return httpx2.AsyncClient(
            base_url=root, transport=_ThreadedTransport(self.transport), timeout=60
        )


class _ThreadedTransport(httpx2.AsyncBaseTransport):
    """A synchronous transport made async by running each request in a thread."""

    def __init__(self, transport: httpx2.BaseTransport):
        self._transport = transport

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()
        inner = httpx2.Request(
            request.method, request.url, headers=request.headers, content=content
        )
        response = await asyncio.to_thread(self._transport.handle_request, inner)
        return httpx2.Response(
            response.status_code, headers=response.headers, content=response.read()
        )


class PortalTransport(httpx2.BaseTransport):
    """A synchronous transport that runs an ASGI app on an event loop in another thread,
    so the synchronous `openai.OpenAI` client can drive the app in-process."""

    def __init__(self, app: ASGIApp, portal: anyio.from_thread.BlockingPortal):
        self._transport = httpx2.ASGITransport(app=app)
        self._portal = portal

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        content = request.read()

        async def call() -> tuple[int, httpx2.Headers, bytes]:
            inner = httpx2.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            response = await self._transport.handle_async_request(inner)
            body = await response.aread()
            return response.status_code, response.headers, body

        status, headers, body = self._portal.call(call)
        return httpx2.Response(status, headers=headers, content=body, request=request)


@contextlib.contextmanager
def library_target(config: Config, stack: Stack | None = None) -> Iterator[Target]:
    app = create_app(config, stack)
    with anyio.from_thread.start_blocking_portal() as portal:
        lifespan = app.lifespan()
        with portal.wrap_async_context_manager(lifespan):
            transport = PortalTransport(app, portal)
            yield Target("library", "http://convostack.test/v1", transport, app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(
    base_url: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"convostack serve exited with code {process.returncode}")
        try:
            if httpx2.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no healthy server at {base_url} after {timeout}s")


@contextlib.contextmanager
def server_process(
    port: int, home: Path, extra_args: tuple[str, ...] = (), env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`convostack serve` in a subprocess, stopped with SIGTERM (then SIGKILL) after."""
    log = (home / f"server-{port}.log").open("wb")
    # Settings come from the arguments and config file alone: a developer's exported
    # CONVOSTACK_* variables would otherwise outrank the config file.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTACK_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "convostack", "serve", "--port", str(port), *extra_args],
        env={**inherited, "CONVOSTACK_HOME": str(home), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/v1", process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def serving_on_fake_upstream(
    home: Path, *args: str, models: tuple[str, ...] = ("fake-model",)
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`convostack serve` with `args` on a fake upstream serving `models`, healthy; its
    output (stdout and stderr) readable from the process; killed afterwards if still up."""
    from convostack.testing.fake_upstream import fake_upstream_server

    with fake_upstream_server(models=list(models)) as upstream_url:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "convostack", "serve", "--port", str(port),
             "--upstream", upstream_url, *args],
            env={"CONVOSTACK_HOME": str(home), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/v1"
            wait_healthy(url, process)
            yield process, url
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def open_target(
    spec: str,
    db: str | None = None,
    settings: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> AbstractContextManager[Target]:
    """The target named by a `--stack-config` value (tests/README.md lists the forms).

    `settings` are config fields (e.g. `inference_mode`, `upstream`, `providers`) for a
    library or spawned server, over those of the named config file, preset or ad-hoc
    stack: given to the app's Config directly, or written to the subprocess's config
    file. `env` is passed to a spawned server (the --env option).
    """
    if spec.startswith(("http://", "https://")):
        url = spec.rstrip("/")
        url = url if url.endswith("/v1") else url + "/v1"
        return contextlib.nullcontext(Target("url", url))
    return _local_target(spec, db, settings or {}, env or {})


@contextlib.contextmanager
def _local_target(
    spec: str, db: str | None, settings: Mapping[str, object], env: Mapping[str, str]
) -> Iterator[Target]:
    home = Path(tempfile.mkdtemp(prefix="convostack-test-"))
    served = spec == "server" or spec.startswith("server:")
    named, port = _server_parts(spec) if served else (spec, None)
    with contextlib.ExitStack() as stack:
        variables = {**os.environ, **env, "DB": db or ""}
        if "FAKE_UPSTREAM" in _named_settings_text(named, settings):
            from convostack.testing.fake_upstream import fake_upstream_server

            variables["FAKE_UPSTREAM"] = stack.enter_context(
                fake_upstream_server(models=["fake-model"])
            )
        base = named_settings(named)
        merged = expand({**base, **settings}, variables)
        merged["db"] = db or merged.get("db") or f"sqlite:///{home / 'test.db'}"
        db_url = str(merged["db"])
        if not served:
            target = stack.enter_context(
                library_target(Config.model_validate({**merged, "home": home}))
            )
            target.db = db_url
            yield target
            return
        if port is not None and _healthy(f"http://127.0.0.1:{port}/v1"):
            yield Target("server", f"http://127.0.0.1:{port}/v1")  # one already listening
            return
        config_file = home / "config.yaml"
        config_file.write_text(yaml.safe_dump(_plain(merged)))
        target = stack.enter_context(_served(port or free_port(), home, config_file, env))
        target.db = db_url
        yield target


def _server_parts(spec: str) -> tuple[str, int | None]:
    """`server`, `server:PORT`, `server:CONFIG`, `server:CONFIG:PORT` -> (CONFIG, PORT)."""
    rest = spec.removeprefix("server").removeprefix(":")
    config, _, port = rest.rpartition(":") if ":" in rest else ("", "", rest)
    if port and not port.isdigit():
        config, port = rest, ""
    return config or "library", int(port) if port else None


def named_settings(named: str) -> dict[str, object]:
    """The settings that a --stack-config name stands for: `library` (none), a preset of
    suites.STACK_PRESETS, a YAML config file, or comma-separated api=provider pairs."""
    if named in ("", "library"):
        return {}
    if named in STACK_PRESETS:
        return dict(STACK_PRESETS[named])
    if "=" in named:
        return adhoc_settings(named)
    path = Path(named)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return file_settings(path)
    presets = ", ".join(STACK_PRESETS)
    raise ValueError(
        f"unknown --stack-config {named!r}: use library, server[:CONFIG][:PORT], a URL, a "
        f"config file, a preset ({presets}) or api=provider pairs (tests/README.md)"
    )


def adhoc_settings(pairs: str) -> dict[str, object]:
    settings: dict[str, object] = {}
    for pair in pairs.split(","):
        api, _, provider = (part.strip() for part in pair.partition("="))
        providers = ADHOC_APIS.get(api)
        if providers is None or provider not in providers:
            known = "; ".join(f"{a}={'|'.join(p)}" for a, p in ADHOC_APIS.items())
            raise ValueError(
                f"unknown api=provider pair {pair!r} in --stack-config; known: {known}"
            )
        settings.update(providers[provider])
    return settings


def _named_settings_text(named: str, settings: Mapping[str, object]) -> str:
    return repr(named_settings(named)) + repr(dict(settings))


_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Settings dropped, rather than refused, when their variable is not set.
_OPTIONAL = frozenset({"upstream_api_key"})


def expand(settings: Mapping[str, object], variables: Mapping[str, str]) -> dict[str, object]:
    """`${NAME}` in string settings replaced from `variables`; a missing one is an error
    naming it (or drops an optional setting)."""
    out: dict[str, object] = {}
    for key, value in settings.items():
        if isinstance(value, str) and "${" in value:
            missing = [n for n in _VARIABLE.findall(value) if not variables.get(n)]
            if missing and key in _OPTIONAL:
                continue
            if missing:
                raise ValueError(
                    f"setting {key} needs {', '.join(missing)}: set it in the environment "
                    f"or with --env {missing[0]}=... (or --db for DB)"
                )
            value = _VARIABLE.sub(lambda m: variables[m.group(1)], value)
        out[key] = value
    return out


def _healthy(base_url: str) -> bool:
    try:
        return httpx2.get(base_url + "/health", timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


@contextlib.contextmanager
def _served(
    port: int, home: Path, config_file: Path, env: Mapping[str, str] | None = None
) -> Iterator[Target]:
    with server_process(port, home, ("--config", str(config_file)), env):
        yield Target("server", f"http://127.0.0.1:{port}/v1")
