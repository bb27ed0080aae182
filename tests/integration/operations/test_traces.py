"""OpenTelemetry spans, collected in-process with the SDK's in-memory exporter: a span
per request, a child per store call and per model call, no prompt text unless enabled,
and a caller's trace continued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from convostack.config import Config
from convostack.observability.telemetry import Telemetry
from convostack.observability.tracing import Tracing, tracing_wanted
from convostack.stack import Stack
from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import library_target
from convostack.testing.upstream import FAKE_MODEL

PROMPT = "the secret plans are under the mat"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(autouse=True)
def _once(request: pytest.FixtureRequest) -> None:
    only_in_library_mode(request.config, "spans are collected in this process: library mode only")


@pytest.fixture
def traced(
    upstream_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[httpx2.Client, InMemorySpanExporter]]:
    content: bool = getattr(request, "param", False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = Config.model_validate({
        "home": tmp_path, "db": f"sqlite:///{tmp_path / 'test.db'}", "inference_mode": "live",
        "providers": [{"type": "openai_compat", "id": "fake", "base_url": upstream_url}],
    })  # fmt: skip
    stack = Stack(config, telemetry=Telemetry(tracing=Tracing(provider, content=content)))
    with library_target(config, stack) as target, target.http_client() as http:
        yield http, exporter


def _turn(http: httpx2.Client, **headers: str) -> str:
    conversation = http.post("/v1/conversations", json={}).json()["id"]
    body = {"model": FAKE_MODEL, "input": PROMPT, "conversation": conversation}
    response = http.post("/v1/responses", json=body, headers=headers)
    assert response.status_code == 200
    return str(response.json()["id"])


def _request_span(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name and s.kind == SpanKind.SERVER]
    return found


def _attribute_text(spans: tuple[ReadableSpan, ...]) -> str:
    return " ".join(str(v) for s in spans for v in (s.attributes or {}).values())


def test_a_request_span_has_store_and_model_children(
    traced: tuple[httpx2.Client, InMemorySpanExporter],
) -> None:
    http, exporter = traced
    _turn(http)
    spans = exporter.get_finished_spans()
    root = _request_span(spans, "POST /v1/responses")
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["http.route"] == "/v1/responses"
    assert root.attributes["http.response.status_code"] == 200
    children = [s for s in spans if s.parent and s.parent.span_id == root.context.span_id]
    names = {s.name for s in children}
    assert f"chat {FAKE_MODEL}" in names
    assert "store save_turn" in names
    assert len([n for n in names if n.startswith("store ")]) >= 2  # reads, then the write
    model = next(s for s in children if s.name == f"chat {FAKE_MODEL}")
    assert model.attributes is not None
    assert int(str(model.attributes["gen_ai.usage.output_tokens"])) > 0
    assert all(s.context.trace_id == root.context.trace_id for s in children)
    # Each span ends inside its parent.
    assert all(root.start_time <= s.start_time <= s.end_time <= root.end_time for s in children)  # type: ignore[operator]
    assert PROMPT not in _attribute_text(spans)


@pytest.mark.parametrize("traced", [True], indirect=True)
def test_prompt_text_only_when_enabled(
    traced: tuple[httpx2.Client, InMemorySpanExporter],
) -> None:
    http, exporter = traced
    _turn(http)
    model = next(s for s in exporter.get_finished_spans() if s.name == f"chat {FAKE_MODEL}")
    assert model.attributes is not None
    assert PROMPT in str(model.attributes["gen_ai.input.messages"])
    assert "echo:" in str(model.attributes["gen_ai.output.messages"])


def test_a_callers_trace_is_continued(
    traced: tuple[httpx2.Client, InMemorySpanExporter],
) -> None:
    http, exporter = traced
    _turn(http, traceparent=f"00-{CALLER_TRACE}-b7ad6b7169203331-01")
    root = _request_span(exporter.get_finished_spans(), "POST /v1/responses")
    assert format(root.context.trace_id, "032x") == CALLER_TRACE


def test_when_tracing_is_on() -> None:
    assert not tracing_wanted(False, {})
    assert tracing_wanted(True, {})
    assert tracing_wanted(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not tracing_wanted(True, {"OTEL_SDK_DISABLED": "true"})
    assert not tracing_wanted(True, {"OTEL_TRACES_EXPORTER": "none"})
