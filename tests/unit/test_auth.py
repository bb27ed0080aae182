"""API keys (hashed at load, looked up in constant time), the auth middleware, the rate
limiter, and how keys are configured."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner
from starlette.types import Message, Receive, Scope, Send

from convostack.auth import (
    ApiKey,
    AuthMiddleware,
    KeyTable,
    bearer_key,
    hash_key,
    is_loopback,
    parse_key_pairs,
    redact,
    warn_if_open,
)
from convostack.cli import main
from convostack.config import load_config
from convostack.config_sources import ConfigError
from convostack.http import PRINCIPAL_SCOPE_KEY
from convostack.limits import RateLimiter

KEY_A = "sk-team-a-0123456789"
KEY_A2 = "sk-team-a-second-key"
KEY_B = "sk-team-b-abcdefghij"


def entries() -> list[ApiKey]:
    return [
        ApiKey(sha256=hash_key(KEY_A), principal="team-a"),
        ApiKey(sha256=hash_key(KEY_A2).upper(), principal="team-a"),
        ApiKey(sha256=hash_key(KEY_B), principal="team-b"),
    ]


# --- configuration --------------------------------------------------------------------


def test_env_pairs_are_hashed_and_never_kept() -> None:
    config = load_config(
        environ={"CONVOSTACK_API_KEYS": f"{KEY_A}=team-a, {KEY_B}=team-b\nsk-with=equals=team-c"}
    )
    assert [(k.sha256, k.principal) for k in config.api_keys] == [
        (hashlib.sha256(KEY_A.encode()).hexdigest(), "team-a"),
        (hashlib.sha256(KEY_B.encode()).hexdigest(), "team-b"),
        (hash_key("sk-with=equals"), "team-c"),  # the principal follows the last '='
    ]
    dumped = yaml.safe_dump(config.model_dump(mode="json"))
    assert KEY_A not in dumped
    assert KEY_B not in dumped


def test_config_file_holds_digests(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        yaml.safe_dump({"api_keys": [{"sha256": hash_key(KEY_A), "principal": "team-a"}]})
    )
    config = load_config(file, environ={})
    assert KeyTable(config.api_keys).principal(KEY_A.encode()) == "team-a"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sk-shrt=team-a", "at least 8"),
        ("no-principal-here", "key=principal"),
        (f"{KEY_A}=bad;principal!", "principal of entry 1"),
        (f"{KEY_A}=team-a,{KEY_A}=team-b", "two principals"),
    ],
)
def test_bad_keys_fail_fast_without_showing_them(raw: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"CONVOSTACK_API_KEYS": raw})
    message = str(caught.value)
    assert expected in message
    assert "CONVOSTACK_API_KEYS" in message
    assert KEY_A not in message
    assert "sk-shrt" not in message


def test_file_entries_are_checked(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({"api_keys": [{"sha256": "abc", "principal": "x"}]}))
    with pytest.raises(ConfigError, match=r"api_keys\.0\.sha256"):
        load_config(file, environ={})
    file.write_text(yaml.safe_dump({"api_keys": [{"key": KEY_A, "principal": "x"}]}))
    with pytest.raises(ConfigError, match="key"):
        load_config(file, environ={})


def test_limits_come_from_config() -> None:
    config = load_config(
        environ={"CONVOSTACK_MAX_TOOLS": "3", "CONVOSTACK_RATE_LIMIT_PER_MINUTE": "600"}
    )
    assert config.limits.max_tools == 3
    assert config.rate_limit_per_minute == 600
    with pytest.raises(ConfigError, match="max_output_tokens"):
        load_config(environ={"CONVOSTACK_MAX_OUTPUT_TOKENS": "8"})


def test_api_key_command_prints_a_key_and_its_entry() -> None:
    result = CliRunner().invoke(main, ["api-key", "--principal", "team-a"])
    assert result.exit_code == 0, result.output
    key = result.output.split("Bearer ...): ")[1].split()[0]
    entry = yaml.safe_load(result.output.split("under api_keys:\n")[1])
    assert entry == [{"sha256": hash_key(key), "principal": "team-a"}]
    hashed = CliRunner().invoke(main, ["api-key", "--principal", "b", "--stdin"], input=KEY_B)
    assert KEY_B not in hashed.output
    assert hash_key(KEY_B) in hashed.output
    refused = CliRunner().invoke(main, ["api-key", "--principal", "no spaces"])
    assert refused.exit_code != 0


# --- keys -----------------------------------------------------------------------------


def test_key_table_maps_keys_to_principals() -> None:
    table = KeyTable(entries())
    assert table.principal(KEY_A.encode()) == "team-a"
    assert table.principal(KEY_A2.encode()) == "team-a"  # two keys, one principal
    assert table.principal(KEY_B.encode()) == "team-b"
    assert table.principal(b"sk-team-a-012345678") is None
    assert table.principal(b"") is None
    assert len(table) == 3
    assert table.principals == {"team-a", "team-b"}


def test_parse_key_pairs_separators() -> None:
    parsed = parse_key_pairs(f" {KEY_A}=a,,{KEY_B}=b \n")
    assert [p.principal for p in parsed] == ["a", "b"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer abc")], b"abc"),
        ([(b"authorization", b"bearer   abc  ")], b"abc"),
        ([(b"authorization", b"BEARER abc")], b"abc"),
        ([(b"authorization", b"Basic YWxhZGRpbjpvcGVu")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"x-api-key", b"abc")], None),
        ([], None),
    ],
)
def test_bearer_key(headers: list[tuple[bytes, bytes]], expected: bytes | None) -> None:
    assert bearer_key(headers) == expected


def test_redact_shows_only_the_ends() -> None:
    assert redact("sk-abcdefghijklmnop") == "sk-************mnop"
    assert redact("short") == "*****"
    assert len(redact("x" * 10_000)) < 50


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("127.0.0.2", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
     ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_server_beyond_loopback_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="convostack.auth"):
        warn_if_open("127.0.0.1", None)
        warn_if_open("0.0.0.0", KeyTable(entries()))
        assert not caplog.records
        warn_if_open("0.0.0.0", None)
    assert "no API keys are configured" in caplog.records[0].getMessage()


# --- the middleware -------------------------------------------------------------------


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    body = orjson.dumps({"principal": scope.get(PRINCIPAL_SCOPE_KEY)})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(
    app: AuthMiddleware, path: str, authorization: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    response_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], response_headers, orjson.loads(body["body"])


def test_middleware_sets_the_principal_of_a_good_key() -> None:
    app = AuthMiddleware(_inner, KeyTable(entries()), None)
    assert _call(app, "/v1/conversations", f"Bearer {KEY_A}")[2] == {"principal": "team-a"}
    assert _call(app, "/v1/responses/x", f"Bearer {KEY_B}")[2] == {"principal": "team-b"}


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "You didn't provide an API key."),
        ("Bearer sk-team-a-012345678X", "Incorrect API key provided: sk-*************678X."),
        (f"Basic {KEY_A}", "You didn't provide an API key."),
    ],
)
def test_middleware_refuses_a_missing_or_wrong_key(authorization: str | None, message: str) -> None:
    app = AuthMiddleware(_inner, KeyTable(entries()), None)
    status, headers, body = _call(app, "/v1/conversations/conv_1", authorization)
    assert status == 401
    assert headers["content-type"] == "application/json"
    assert headers["www-authenticate"].startswith("Bearer")
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["param"] is None
    assert body["error"]["message"].startswith(message)


@pytest.mark.parametrize("path", ["/v1/health", "/openapi.json", "/"])
def test_health_and_non_api_paths_need_no_key(path: str) -> None:
    app = AuthMiddleware(_inner, KeyTable(entries()), None)
    assert _call(app, path) == (200, {}, {"principal": None})


def test_middleware_passes_lifespan_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    app = AuthMiddleware(inner, KeyTable(entries()), None)

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        pass

    asyncio.run(app({"type": "lifespan"}, nothing, ignore))
    assert seen == ["lifespan"]


# --- the rate limit -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_per_principal() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)  # one token a second
    assert limiter.take("b") == 0.0  # another principal has its own bucket
    clock.now += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills to the burst, no more


def test_default_burst_is_a_tenth_of_the_minute() -> None:
    assert RateLimiter(per_minute=600).burst == 60
    assert RateLimiter(per_minute=5).burst == 1


def test_middleware_rate_limits_with_retry_after() -> None:
    clock = Clock()
    app = AuthMiddleware(_inner, KeyTable(entries()), RateLimiter(60, 2, clock))
    for _ in range(2):
        assert _call(app, "/v1/conversations", f"Bearer {KEY_A}")[0] == 200
    status, headers, body = _call(app, "/v1/conversations", f"Bearer {KEY_A2}")  # same principal
    assert status == 429
    assert headers["retry-after"] == "1"
    assert headers["retry-after-ms"] == "1000"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "60 requests per minute" in body["error"]["message"]
    assert _call(app, "/v1/conversations", f"Bearer {KEY_B}")[0] == 200
    assert _call(app, "/v1/health")[0] == 200  # never limited
    clock.now += 1
    assert _call(app, "/v1/conversations", f"Bearer {KEY_A}")[0] == 200


def test_open_server_rate_limits_everyone_as_default() -> None:
    app = AuthMiddleware(_inner, None, RateLimiter(60, 1, Clock()))
    assert _call(app, "/v1/models") == (200, {}, {"principal": None})
    assert _call(app, "/v1/models")[0] == 429
