"""Telemetry: the metrics and the tracer one stack reports to, and the wrappers that
measure its store and its providers.

The wrappers are installed only when metrics or tracing are on, so a server with both
off calls its store and providers directly, exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from convostack.observability.hooks import NOT_OBSERVED, Observer
from convostack.observability.metrics import Metrics, multiprocess_dir
from convostack.observability.tracing import Tracing, tracing_wanted

if TYPE_CHECKING:
    from convostack.config import Config


class Telemetry:
    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None):
        self.metrics = metrics
        self.tracing = tracing
        self.observer: Observer = metrics or NOT_OBSERVED

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> Telemetry:
        environ = os.environ if environ is None else environ
        metrics = None
        if config.metrics:
            # Several workers share their counts through files (metrics.py says how).
            shared = multiprocess_dir(config.home) if config.workers > 1 else None
            metrics = Metrics(shared)
        tracing = None
        if tracing_wanted(config.tracing, environ):
            tracing = Tracing.exporting(environ, config.trace_content)
        return cls(metrics, tracing)

    @property
    def enabled(self) -> bool:
        return self.metrics is not None or self.tracing is not None

    def start(self) -> None:
        if self.metrics is not None:
            self.metrics.start()

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        if self.tracing is not None:
            self.tracing.shutdown()
