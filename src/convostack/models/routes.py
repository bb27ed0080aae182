"""HTTP routes of the Models API, read from the model router's table."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from convostack.http import json_response
from convostack.providers.router import ModelRouter
from convostack.providers.router import Route as ModelRoute
from convostack.routing import Route


def _router(request: Request) -> ModelRouter:
    router: ModelRouter = request.app.state.stack.models
    return router


def _model(route: ModelRoute) -> dict[str, object]:
    return {
        "id": route.public_id,
        "object": "model",
        "created": route.model.created,
        "owned_by": route.model.owned_by,
    }


async def list_models(request: Request) -> Response:
    data = [_model(route) for route in _router(request).models()]
    return json_response({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    model_id: str = request.path_params["model_id"]
    # resolve() refreshes the table once for an id it does not know, so a model just
    # added upstream is found; an unknown one is ModelNotFound (404).
    route = await _router(request).describe(model_id)
    return json_response(_model(route))


routes = [
    Route("/v1/models", list_models, ("GET",)),
    # `path`, because model ids such as `meta-llama/Llama-3.1-8B` contain slashes.
    Route("/v1/models/{model_id:path}", retrieve_model, ("GET",)),
]
