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
from convostack.observability.metrics import Metrics
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
        metrics = Metrics() if config.metrics else None
        tracing = None
        if tracing_wanted(config.tracing, environ):
            tracing = Tracing.exporting(environ, config.trace_content)
        return cls(metrics, tracing)

    @property
    def enabled(self) -> bool:
        return self.metrics is not None or self.tracing is not None

    def close(self) -> None:
        if self.tracing is not None:
            self.tracing.shutdown()
