"""Which provider serves which model id.

Public ids are each provider's own model ids, plus `<provider id>/<model>` for providers
with `prefix_models` (and for any id that two providers share). The table is built at
start and rebuilt, at most once per REFRESH_SECONDS, when a request names a model it does
not know, so models added upstream appear without a restart.

Aliases (the `model_aliases` setting) are ids that stand for another: a request naming
`gpt-4.1` is served by its target, and answers with the target's id as its `model`, so
what served it is never hidden. /v1/models lists each alias (under its own id) beside
the models. `default_model` is the model of a Responses request that names none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from convostack.errors import NotFoundError
from convostack.providers.base import InferenceProvider, ModelInfo

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Route:
    public_id: str
    provider: InferenceProvider
    model: ModelInfo


class ModelNotFound(NotFoundError):
    def __init__(self, model: str, alias_of: str | None = None):
        named = f"'{model}'" if alias_of is None else f"'{alias_of}' (that '{model}' stands for)"
        super().__init__(
            f"The model {named} does not exist or you do not have access to it. "
            "List the available models with GET /v1/models.",
            code="model_not_found",
            param="model",
        )


class ModelRouter:
    def __init__(
        self,
        providers: list[InferenceProvider],
        prefixed: set[str] | None = None,
        aliases: dict[str, str] | None = None,
        default_model: str | None = None,
    ):
        self.providers = providers
        self._prefixed = prefixed or set()
        self._aliases = aliases or {}
        self.default_model = default_model
        self._routes: dict[str, Route] = {}
        self._refreshed_at = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        for provider in self.providers:
            await provider.start()
        await self.refresh()
        for alias, target in self._aliases.items():
            if target not in self._routes:
                # Info, not a warning: the default alias's target is the embedded model,
                # which a server of upstream models does not have.
                log.info("model alias %s: no provider serves its target %s", alias, target)

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()

    async def refresh(self) -> None:
        async with self._lock:
            listed: list[tuple[InferenceProvider, list[ModelInfo]]] = []
            for provider in self.providers:
                try:
                    listed.append((provider, await provider.list_models()))
                except Exception as exc:  # one unreachable upstream must not hide the others
                    log.warning("provider %s: cannot list models: %s", provider.id, exc)
            self._routes = self._build(listed)
            self._refreshed_at = time.monotonic()

    def _build(self, listed: list[tuple[InferenceProvider, list[ModelInfo]]]) -> dict[str, Route]:
        counts: dict[str, int] = {}
        for _, models in listed:
            for model in models:
                counts[model.id] = counts.get(model.id, 0) + 1
        routes: dict[str, Route] = {}
        for provider, models in listed:
            for model in models:
                if counts[model.id] == 1:
                    routes.setdefault(model.id, Route(model.id, provider, model))
                if counts[model.id] > 1 or provider.id in self._prefixed:
                    prefixed = f"{provider.id}/{model.id}"
                    routes[prefixed] = Route(prefixed, provider, model)
        return routes

    def models(self) -> list[Route]:
        """The models, then each alias whose target is served, under the alias's id."""
        aliases = [
            Route(alias, route.provider, route.model)
            for alias, target in self._aliases.items()
            if alias not in self._routes and (route := self._routes.get(target)) is not None
        ]
        return [*self._routes.values(), *aliases]

    async def resolve(self, model: str) -> Route:
        """The route that serves `model`: an alias's target's (a model of that id wins
        over an alias). Raises ModelNotFound."""
        route = self._routes.get(model)
        if route is None and time.monotonic() - self._refreshed_at > REFRESH_SECONDS:
            await self.refresh()
            route = self._routes.get(model)
        if route is None and model in self._aliases:
            route = self._routes.get(self._aliases[model])
            if route is None:
                raise ModelNotFound(model, alias_of=self._aliases[model])
        if route is None:
            raise ModelNotFound(model)
        return route

    async def describe(self, model: str) -> Route:
        """What GET /v1/models/{model} shows: an alias under its own id."""
        route = await self.resolve(model)
        return route if route.public_id == model else Route(model, route.provider, route.model)
