"""OpenTelemetry traces: one span per request, a child per store call and per model call.

On when the `tracing` setting is, or when the standard variables name an OTLP endpoint
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless
OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The exporter (OTLP over HTTP)
reads every other OTEL_* variable itself (headers, timeout, protocol details), and the
resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. The tracer provider is ours,
never the process-global one, so that an app embedding convostack keeps its own.

Prompt and output text stay out of spans unless `trace_content` is on: a trace backend
is usually readable by more people than the conversations are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from convostack import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
MISSING_SDK = (
    "tracing is configured (the 'tracing' setting or OTEL_EXPORTER_OTLP_*ENDPOINT) but the "
    "OpenTelemetry SDK is not installed: pip install 'convostack[otel]', or turn tracing off."
)


class TracingUnavailable(Exception):
    """Tracing was asked for and the SDK is missing; the message says what to install."""


def tracing_wanted(setting: bool, environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return setting or any(environ.get(name) for name in ENDPOINT_VARIABLES)


class Tracing:
    """A tracer and the provider behind it (shut down, so flushed, with the stack)."""

    def __init__(self, provider: TracerProvider, content: bool = False):
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("convostack", __version__)
        self.content = content

    @classmethod
    def exporting(cls, environ: Mapping[str, str], content: bool) -> Tracing:
        """Spans batched to the OTLP/HTTP exporter the OTEL_* variables configure."""
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise TracingUnavailable(MISSING_SDK) from None
        # Given attributes win over OTEL_SERVICE_NAME in the SDK: name it only if unnamed.
        named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named else {"service.name": "convostack"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, content)

    def shutdown(self) -> None:
        self.provider.shutdown()
