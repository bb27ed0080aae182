"""GET /v1/version, /v1/inspect/routes and /v1/providers[/{id}]: what the server runs,
behind the API keys, with no secret in any answer."""

from __future__ import annotations

import httpx2
import pytest

from convostack import __version__
from convostack.testing.upstream import FAKE_MODEL

from .conftest import KEY_HEADER, UPSTREAM_KEY, URL_PASSWORD

OPERATOR_PATHS = ["/v1/version", "/v1/inspect/routes", "/v1/providers", "/v1/providers/fake"]


@pytest.mark.parametrize("path", OPERATOR_PATHS)
def test_the_operator_routes_need_a_key(http: httpx2.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    wrong = http.get(path, headers={"authorization": "Bearer sk-not-a-key-0123456789"})
    assert wrong.status_code == 401


def test_version(http: httpx2.Client) -> None:
    assert http.get("/v1/version", headers=KEY_HEADER).json() == {"version": __version__}


def test_routes_are_listed_with_their_kind(http: httpx2.Client) -> None:
    body = http.get("/v1/inspect/routes", headers=KEY_HEADER).json()
    kinds = {(r["method"], r["route"]): r["kind"] for r in body["data"]}
    assert kinds[("POST", "/v1/responses")] == "openai"
    assert kinds[("GET", "/v1/conversations/{conversation_id}/items")] == "openai"
    assert kinds[("GET", "/v1/conversations")] == "extension"
    assert kinds[("GET", "/v1/providers/{provider_id}")] == "extension"
    assert kinds[("GET", "/v1/inspect/routes")] == "extension"
    assert set(kinds.values()) == {"openai", "extension"}


def test_providers_show_type_models_and_health(http: httpx2.Client) -> None:
    response = http.get("/v1/providers", headers=KEY_HEADER)
    assert response.status_code == 200
    by_id = {p["provider_id"]: p for p in response.json()["data"]}
    assert set(by_id) == {"fake", "dead"}
    fake, dead = by_id["fake"], by_id["dead"]
    assert fake["provider_type"] == "openai_compat"
    assert FAKE_MODEL in fake["models"]
    assert fake["health"] == {"status": "ok"}
    assert dead["health"]["status"] == "error"
    assert dead["models"] == ["dead-model"]  # configured, so listed; the check still fails
    assert fake["config"]["base_url"].startswith("http://127.0.0.1:")


def test_no_secret_in_any_provider_answer(http: httpx2.Client) -> None:
    for path in ("/v1/providers", "/v1/providers/fake", "/v1/providers/dead"):
        text = http.get(path, headers=KEY_HEADER).text
        assert UPSTREAM_KEY not in text
        assert URL_PASSWORD not in text
        assert "api_key" not in text


def test_one_provider_and_an_unknown_one(http: httpx2.Client) -> None:
    fake = http.get("/v1/providers/fake", headers=KEY_HEADER).json()
    assert fake["provider_id"] == "fake"
    missing = http.get("/v1/providers/nope", headers=KEY_HEADER)
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "provider_id"


def test_the_openapi_document_has_them(http: httpx2.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/version", "/v1/inspect/routes", "/v1/providers"):
        assert "401" in paths[path]["get"]["responses"]
    assert "/v1/providers/{provider_id}" in paths
