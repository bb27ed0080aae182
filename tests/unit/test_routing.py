"""The router: which endpoint a path reaches, and the errors when none does."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any, cast

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from convostack.app import create_app
from convostack.config import Config
from convostack.errors import NotFoundError
from convostack.observability.telemetry import Telemetry
from convostack.routing import Route, Router
from convostack.stack import Stack


def _named(name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return Response(orjson.dumps({"endpoint": name, "params": request.path_params}))

    return endpoint


async def _missing(request: Request) -> Response:
    raise NotFoundError("No such thing.", param="thing_id")


ROUTER = Router(
    [
        Route("/v1/things", _named("list"), ("GET",)),
        Route("/v1/things", _named("create"), ("POST",)),
        Route("/v1/things/{thing_id}", _named("get"), ("GET",)),
        Route("/v1/things/latest", _named("latest"), ("GET",)),
        Route("/v1/things/{thing_id}/parts/{part_id}", _named("part"), ("DELETE",)),
        Route("/v1/missing", _missing, ("GET",)),
        Route("/v1/models/{model_id:path}", _named("model"), ("GET",)),
    ]
)


def _call(method: str, path: str) -> tuple[int, dict[str, str], Any]:
    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(ROUTER(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, orjson.loads(sent[1]["body"])


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "params"),
    [
        ("GET", "/v1/things", "list", {}),
        ("POST", "/v1/things", "create", {}),
        ("GET", "/v1/things/thing_1", "get", {"thing_id": "thing_1"}),
        ("GET", "/v1/things/latest", "latest", {}),  # a fixed segment before a parameter
        ("HEAD", "/v1/things/x", "get", {"thing_id": "x"}),
        ("DELETE", "/v1/things/a/parts/b", "part", {"thing_id": "a", "part_id": "b"}),
        ("GET", "/v1/models/org/name-7b", "model", {"model_id": "org/name-7b"}),
    ],
)
def test_a_path_reaches_its_endpoint_with_its_parameters(
    method: str, path: str, endpoint: str, params: dict[str, str]
) -> None:
    status, _, body = _call(method, path)
    assert status == 200
    assert body == {"endpoint": endpoint, "params": params}


@pytest.mark.parametrize(
    "path",
    ["/v1/things/", "/v1/things//parts/b", "/v1/nothing", "/v1", "", "/v1/things/a/parts"],
)
def test_an_unknown_path_is_a_404_in_the_openai_body(path: str) -> None:
    status, _, body = _call("GET", path)
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"] == f"Invalid URL (GET {path})"


def test_another_method_is_a_405_naming_the_allowed_ones() -> None:
    status, headers, body = _call("PUT", "/v1/things")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, POST"
    assert body["error"]["message"] == "Method PUT is not allowed on /v1/things."


def test_an_endpoint_error_is_its_status_and_body() -> None:
    status, _, body = _call("GET", "/v1/missing")
    assert status == 404
    assert body["error"] == {
        "message": "No such thing.",
        "type": "invalid_request_error",
        "param": "thing_id",
        "code": None,
    }


def test_routes_that_disagree_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="two endpoints"):
        Router([Route("/a", _missing, ("GET",)), Route("/a", _missing, ("GET",))])
    with pytest.raises(ValueError, match="'b' where 'a' is"):
        Router([Route("/x/{a}", _missing, ("GET",)), Route("/x/{b}/y", _missing, ("GET",))])
    with pytest.raises(ValueError, match="must come last"):
        Router([Route("/x/{rest:path}/y", _missing, ("GET",))])


class _FailingStack:
    telemetry = Telemetry()

    async def start(self) -> None:
        raise ConnectionRefusedError("no database at 127.0.0.1:1")

    async def close(self) -> None:
        raise AssertionError("never started, so never closed")


def test_a_stack_that_cannot_start_fails_the_lifespan_with_one_line() -> None:
    app = create_app(Config(), cast(Stack, _FailingStack()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "ConnectionRefusedError: no database at 127.0.0.1:1",
        }
    ]
