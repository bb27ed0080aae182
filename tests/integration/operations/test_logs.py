"""One access line per request, with the request id the client also gets as
`x-request-id` (the `openai` client's `_request_id`); JSON lines as a setting."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx2
import openai
import pytest
import yaml

from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import Target, serving_on_fake_upstream
from convostack.testing.upstream import FAKE_MODEL

from .conftest import KEY, KEY_HEADER


def test_the_openai_client_sees_the_request_id(stack_target: Target, http: httpx2.Client) -> None:
    client = stack_target.openai_client(http, api_key=KEY)
    conversation = client.conversations.create()
    assert conversation._request_id is not None
    assert conversation._request_id.startswith("req_")
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.retrieve("conv_missing")
    assert caught.value.request_id is not None


def test_a_callers_request_id_is_kept_and_a_bad_one_replaced(http: httpx2.Client) -> None:
    kept = http.get("/v1/version", headers={**KEY_HEADER, "x-request-id": "lb-1234.abc"})
    assert kept.headers["x-request-id"] == "lb-1234.abc"
    replaced = http.get("/v1/version", headers={**KEY_HEADER, "x-request-id": "a b<script>"})
    assert replaced.headers["x-request-id"].startswith("req_")


def test_one_access_line_per_request(
    request: pytest.FixtureRequest, http: httpx2.Client, caplog: pytest.LogCaptureFixture
) -> None:
    only_in_library_mode(request.config, "the log is captured in this process: library mode only")
    with caplog.at_level(logging.INFO, logger="convostack.access"):
        response = http.get("/v1/conversations/conv_missing", headers=KEY_HEADER)
    lines = [r for r in caplog.records if r.name == "convostack.access"]
    assert len(lines) == 1
    line = lines[0]
    request_id = response.headers["x-request-id"]
    assert f"request_id={request_id}" in line.getMessage()
    assert "GET /v1/conversations/conv_missing 404" in line.getMessage()
    assert line.__dict__["route"] == "/v1/conversations/{conversation_id}"
    assert line.__dict__["principal"] == "ops"


def test_json_logs_from_a_served_process(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if request.config.getoption("--stack-config") != "library":
        pytest.skip("spawns a server of its own: once is enough")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"log_format": "json", "access_log": True}))
    with serving_on_fake_upstream(tmp_path, "--config", str(config), models=(FAKE_MODEL,)) as (
        process,
        url,
    ):
        request_id = httpx2.get(url + "/models").headers["x-request-id"]
        process.terminate()
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == request_id]
    assert len(access) == 1
    assert access[0]["logger"] == "convostack.access"
    assert access[0]["status"] == 200
    assert access[0]["route"] == "/v1/models"
    assert {"time", "level", "message"} <= set(access[0])
