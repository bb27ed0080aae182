"""Schemathesis against the server's own /openapi.json: examples generated from every
operation's schema, valid ones and invalid ones, sent with a key. Whatever it sends, the
answer is never a 5xx (nor a 422), and every error is in the OpenAI error body.

Bounded and reproducible: a fixed number of examples per operation and mode, derandomised,
about a minute in all. (Schemathesis's own pytest plugin is not used: it does not run on
this pytest; its strategies are driven by hypothesis directly instead.)
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from convostack.openapi import OPERATIONS

Case = schemathesis.Case[Any]

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
KEY = "sk-sec-team-a-0123456789abcdef"  # team-a's key, as configured in conftest.py


@pytest.fixture(scope="module")
def served_schema(http: httpx2.Client) -> Any:
    """The document the server serves (not the module that builds it)."""
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def check(response: httpx2.Response) -> None:
    status = response.status_code
    assert status < 500, response.text
    assert status != 422, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/json", response.text
        body = response.json()
        assert set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str)
        assert error["message"]
        assert isinstance(error["type"], str)
        assert error["param"] is None or isinstance(error["param"], str)
        assert error["code"] is None or isinstance(error["code"], str)


def send(http: httpx2.Client, case: Case) -> httpx2.Response:
    kwargs = case.as_transport_kwargs(headers={"authorization": f"Bearer {KEY}"})
    url = httpx2.URL(kwargs.pop("url")).copy_merge_params(kwargs.pop("params", None) or {})
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    return http.request(url=url.raw_path.decode("ascii"), **kwargs)


# Invalid examples need something to make invalid: a body or a query (any string is a
# valid path parameter).
CASES = [
    pytest.param(op.operation_id, mode, id=f"{op.operation_id}-{mode.value}")
    for op in OPERATIONS
    for mode in EXAMPLES
    if mode is GenerationMode.POSITIVE or op.body or op.query
]


@pytest.mark.parametrize(("operation_id", "mode"), CASES)
def test_no_server_errors_and_only_openai_error_bodies(
    http: httpx2.Client, served_schema: Any, operation_id: str, mode: GenerationMode
) -> None:
    operation = served_schema.find_operation_by_id(operation_id)
    strategy: st.SearchStrategy[Case] = operation.as_strategy(mode)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        check(send(http, case))

    run()


def test_the_document_says_how_to_authenticate(http: httpx2.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearerAuth": []}, {}]  # keys are optional
    health = document["paths"]["/v1/health"]["get"]
    assert health["security"] == []
    assert "401" not in health["responses"]
    create = document["paths"]["/v1/responses"]["post"]["responses"]
    assert {"401", "429"} <= set(create)
