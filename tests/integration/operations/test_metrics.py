"""/metrics counts exactly the traffic the server saw: requests by route template and
status, turns by model and status, tokens, model and store latency, tool calls."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from convostack.testing.upstream import FAKE_MODEL

from .conftest import KEY_HEADER

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ITEMS = "/v1/conversations/{conversation_id}/items"


def scrape(http: httpx2.Client, path: str = "/metrics") -> Samples:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_requests_are_counted_by_route_template_and_status(http: httpx2.Client) -> None:
    before = scrape(http)
    conversation = http.post("/v1/conversations", json={}, headers=KEY_HEADER).json()
    for _ in range(3):
        listed = http.get(f"/v1/conversations/{conversation['id']}/items", headers=KEY_HEADER)
        assert listed.status_code == 200
    assert http.get("/v1/conversations/conv_missing/items", headers=KEY_HEADER).status_code == 404
    assert http.get("/v1/conversations").status_code == 401
    assert http.get("/no/such/path", headers=KEY_HEADER).status_code == 404
    after = scrape(http)
    requests = "convostack_requests_total"
    assert delta(before, after, requests, method="GET", route=ITEMS, status="200") == 3
    assert delta(before, after, requests, method="GET", route=ITEMS, status="404") == 1
    assert delta(before, after, requests, method="POST", route="/v1/conversations",
                 status="200") == 1  # fmt: skip
    # Refused before routing (no key), or matching no route: no template to name.
    assert delta(before, after, requests, method="GET", route="(none)", status="401") == 1
    assert delta(before, after, requests, method="GET", route="(none)", status="404") == 1
    histogram = "convostack_request_duration_seconds_count"
    assert delta(before, after, histogram, method="GET", route=ITEMS) == 4
    assert delta(before, after, "convostack_store_duration_seconds_count",
                 operation="list_items") >= 4  # fmt: skip


def test_turns_tokens_and_model_calls(http: httpx2.Client) -> None:
    before = scrape(http)
    body = {"model": FAKE_MODEL, "input": "one two three"}
    done = http.post("/v1/responses", json=body, headers=KEY_HEADER).json()
    streamed = http.post("/v1/responses", json={**body, "stream": True}, headers=KEY_HEADER)
    assert streamed.status_code == 200
    assert "response.completed" in streamed.text
    failed = http.post("/v1/responses", json={**body, "input": "fail500"}, headers=KEY_HEADER)
    assert failed.status_code >= 500
    after = scrape(http)
    turns = "convostack_turns_total"
    assert delta(before, after, turns, model=FAKE_MODEL, status="completed") == 2
    assert delta(before, after, turns, model=FAKE_MODEL, status="failed") == 1
    usage = done["usage"]
    tokens = "convostack_tokens_total"
    assert delta(before, after, tokens, model=FAKE_MODEL, direction="input") == (
        2 * usage["input_tokens"]
    )
    assert delta(before, after, tokens, model=FAKE_MODEL, direction="output") == (
        2 * usage["output_tokens"]
    )
    upstream = "convostack_upstream_duration_seconds_count"
    assert delta(before, after, upstream, provider="fake", endpoint="chat") == 2
    assert delta(before, after, upstream, provider="fake", endpoint="chat_stream") == 1
    errors = "convostack_upstream_errors_total"
    assert delta(before, after, errors, provider="fake", endpoint="chat", status="502") == 1
    assert delta(before, after, "convostack_store_duration_seconds_count",
                 operation="save_turn") == 3  # fmt: skip


def test_tool_calls_are_counted(http: httpx2.Client) -> None:
    before = scrape(http)
    body = {
        "model": FAKE_MODEL,
        "input": 'call add {"a": 20, "b": 22}',
        "tools": [{"type": "mcp", "server_label": "tools"}],
    }
    response = http.post("/v1/responses", json=body, headers=KEY_HEADER)
    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["output"]][-2:] == ["mcp_call", "message"]
    after = scrape(http)
    calls = "convostack_tool_calls_total"
    assert delta(before, after, calls, type="mcp_call", status="completed") == 1
