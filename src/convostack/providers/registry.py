"""Provider types: one line each, mapping a `type` to its settings and a lazily imported
implementation. Adding a provider is one line here plus one module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from convostack.config_sources import ConfigError
from convostack.providers.base import InferenceProvider
from convostack.providers.settings import (
    EmbeddedEmbeddingsSettings,
    EmbeddedSettings,
    OpenAICompatSettings,
    ProviderSettings,
)


@dataclass(frozen=True)
class ProviderType:
    settings: type[ProviderSettings]
    implementation: str  # "module:Class", imported on first use

    def create(self, settings: ProviderSettings) -> InferenceProvider:
        module_name, _, class_name = self.implementation.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        provider: InferenceProvider = cls(settings)
        return provider


PROVIDER_TYPES: dict[str, ProviderType] = {
    "openai_compat": ProviderType(
        OpenAICompatSettings, "convostack.providers.openai_compat:OpenAICompatProvider"
    ),
    "embedded": ProviderType(EmbeddedSettings, "convostack.providers.embedded:EmbeddedProvider"),
    "embedded_embeddings": ProviderType(
        EmbeddedEmbeddingsSettings,
        "convostack.providers.embedded_embeddings:EmbeddedEmbeddingsProvider",
    ),
}


def parse_settings(raw: dict[str, Any], where: str) -> ProviderSettings:
    kind = raw.get("type")
    spec = PROVIDER_TYPES.get(kind) if isinstance(kind, str) else None
    if spec is None:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise ConfigError(f"Invalid configuration: {where}.type = {kind!r}; known types: {known}.")
    try:
        return spec.settings.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"Invalid configuration:\n{problems}") from None


def create_provider(settings: ProviderSettings) -> InferenceProvider:
    return PROVIDER_TYPES[settings.type].create(settings)
