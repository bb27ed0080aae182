"""Request routing: a path trie from URL to endpoint, and the one place where errors
become HTTP responses.

Hand-written rather than Starlette's application and router because, measured on
items.create in-process, Starlette's layers (two exception middlewares, a regex tried per
route in turn, a wrapper per endpoint) cost more than validating and storing the item;
see bench/RESULTS.md. Endpoints still take Starlette's `Request` and return its
`Response`s, which are thin.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from convostack.errors import (
    APIError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    store_unavailable_message,
)
from convostack.http import JSON
from convostack.storage.base import StoreUnavailable

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
# Where the router leaves the matched route's template, for metrics and logs: a label of
# bounded cardinality, unlike the path itself.
ROUTE_SCOPE_KEY = "convostack.route"


@dataclass(frozen=True)
class Route:
    """`path` names its parameters in braces, one segment each (`{conversation_id}`), or
    the rest of the path with `{name:path}` (model ids contain slashes)."""

    path: str
    endpoint: Endpoint
    methods: tuple[str, ...]


@dataclass
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    rest: str | None = None  # a {name:path} parameter ends the path here
    rest_methods: dict[str, Endpoint] = field(default_factory=dict)
    rest_template: str = ""
    methods: dict[str, Endpoint] = field(default_factory=dict)
    template: str = ""  # the route's path as written, e.g. /v1/responses/{response_id}


def error_response(error: APIError) -> Response:
    return Response(
        error.body_bytes(), status_code=error.status, media_type=JSON, headers=error.headers()
    )


def store_unavailable_response(exc: StoreUnavailable) -> Response:
    log.warning("store unavailable: %s", exc)
    response = error_response(ServiceUnavailableError(store_unavailable_message()))
    response.headers["retry-after"] = "1"  # the openai client waits that long, then retries
    return response


class Router:
    """An ASGI app calling the endpoint that the path and method name. Unknown paths are
    404 and known paths with another method 405, both in the OpenAI error body; an
    endpoint's APIError is its status and body, a lost store a 503. Anything else
    propagates (the app's guard turns it into a logged 500)."""

    def __init__(self, routes: Sequence[Route]):
        self._root = _Node()
        for route in routes:
            self._add(route)

    def _add(self, route: Route) -> None:
        node = self._root
        segments = route.path.strip("/").split("/")
        for n, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("}"):
                name, _, kind = segment[1:-1].partition(":")
                if kind == "path":
                    if n != len(segments) - 1:
                        raise ValueError(f"{route.path}: a path parameter must come last")
                    node.rest = name
                    node.rest_template = route.path
                    _set_methods(node.rest_methods, route)
                    return
                if node.param is None:
                    node.param = (name, _Node())
                elif node.param[0] != name:
                    raise ValueError(f"{route.path}: '{name}' where '{node.param[0]}' is")
                node = node.param[1]
            else:
                node = node.static.setdefault(segment, _Node())
        node.template = route.path
        _set_methods(node.methods, route)

    def match(self, path: str) -> tuple[dict[str, Endpoint], dict[str, str], str] | None:
        """The endpoints by method at `path`, its parameters and the route's template;
        None if nothing is."""
        if not path.startswith("/"):
            return None
        params: dict[str, str] = {}
        found = _walk(self._root, path[1:].split("/"), 0, params)
        return None if found is None else (found[0], params, found[1])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        method: str = scope["method"]
        matched = self.match(path)
        if matched is None:
            response = error_response(NotFoundError(f"Invalid URL ({method} {path})"))
        else:
            endpoints, scope["path_params"], scope[ROUTE_SCOPE_KEY] = matched
            endpoint = endpoints.get(method)
            if endpoint is None:
                response = error_response(
                    MethodNotAllowedError(f"Method {method} is not allowed on {path}.")
                )
                response.headers["allow"] = ", ".join(endpoints)
            else:
                try:
                    response = await endpoint(Request(scope, receive))
                except APIError as exc:
                    response = error_response(exc)
                except StoreUnavailable as exc:
                    response = store_unavailable_response(exc)
        await response(scope, receive, send)


def _set_methods(table: dict[str, Endpoint], route: Route) -> None:
    for method in route.methods:
        if method in table:
            raise ValueError(f"{route.path}: two endpoints for {method}")
        table[method] = route.endpoint
    if "GET" in route.methods:
        table.setdefault("HEAD", route.endpoint)


def _walk(
    node: _Node, segments: list[str], n: int, params: dict[str, str]
) -> tuple[dict[str, Endpoint], str] | None:
    """Depth first, a static segment before a parameter, so `/items/{id}` cannot shadow
    a fixed path beside it; a segment is never empty."""
    if n == len(segments):
        return (node.methods, node.template) if node.methods else None
    segment = segments[n]
    child = node.static.get(segment)
    if child is not None:
        found = _walk(child, segments, n + 1, params)
        if found is not None:
            return found
    if segment and node.param is not None:
        name, child = node.param
        found = _walk(child, segments, n + 1, params)
        if found is not None:
            params[name] = segment
            return found
    if node.rest is not None and all(segments[n:]):
        params[node.rest] = "/".join(segments[n:])
        return node.rest_methods, node.rest_template
    return None
