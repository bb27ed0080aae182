"""`convostack serve` as a user runs it: one line with its URL, health, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from convostack.testing.stack import free_port, serving_on_fake_upstream, wait_healthy


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_logs_its_url_answers_health_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "convostack", "serve", "--port", str(port)],
        env={"CONVOSTACK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        wait_healthy(url, process)
        assert httpx2.get(url + "/health").json() == {"status": "ok"}
        created = httpx2.post(url + "/conversations", json={"metadata": {"a": "b"}})
        assert created.status_code == 200
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    log = output.decode()
    assert f"convostack serving at {url}" in log
    assert log.count("serving at") == 1
    assert "Traceback" not in log
    assert (tmp_path / "convostack.db").exists()  # the default database, under the home


def test_bad_config_fails_fast_with_a_fix(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "convostack", "serve", "--port", "0"],
        env={"CONVOSTACK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    message = result.stderr.decode()
    assert "Invalid configuration" in message
    assert "--port" in message
    assert "CONVOSTACK_PORT" in message
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("db", "shown", "check"),
    [
        (
            "postgresql://nobody:s3cret-pw@127.0.0.1:1/x",
            "postgresql://nobody:***@127.0.0.1:1/x",
            "PostgreSQL is running",
        ),
        ("sqlite:///{file}/sub/x.db", "sqlite:///{file}/sub/x.db", "folder exists"),
    ],
    ids=["postgres-refused", "sqlite-folder-not-creatable"],
)
def test_a_database_out_of_reach_stops_the_server_with_one_line(
    tmp_path: Path, db: str, shown: str, check: str
) -> None:
    file = tmp_path / "a-file"  # a folder cannot be made inside a file, even by root
    file.write_text("")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "convostack", "serve", "--port", str(free_port()),
         "--db", db.format(file=file)],
        env={"CONVOSTACK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: could not open the database {shown.format(file=file)}: ")
    assert check in lines[0]
    assert "--db" in lines[0]
    assert "s3cret" not in lines[0]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (["--db", "mysql://root:s3cret-pw@db/x"], "db = mysql://root:***@db/x"),
        (["--db", "postgresql://u@db/x?pool_max_size=many"], "pool_max_size"),
        (["--config", "{tmp}/two-embedded.yaml"], "provider ids must be unique"),
    ],
    ids=["unknown-scheme", "bad-pool-setting", "duplicate-provider-ids"],
)
def test_a_database_url_or_providers_that_cannot_work_stop_the_server_with_one_line(
    tmp_path: Path, setting: list[str], expected: str
) -> None:
    (tmp_path / "two-embedded.yaml").write_text("providers: [{type: embedded}, {type: embedded}]")
    result = subprocess.run(
        [sys.executable, "-m", "convostack", "serve", "--port", str(free_port()),
         *(arg.format(tmp=tmp_path) for arg in setting)],
        env={"CONVOSTACK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: Invalid configuration: ")
    assert expected in lines[0]
    assert "s3cret" not in lines[0]


def test_openapi_document_lists_the_conversations_api(http: httpx2.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths["/v1/conversations/{conversation_id}/items"]) == {"get", "post"}
    create = paths["/v1/conversations"]["post"]
    assert create["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Conversation"
    )
    assert "ConversationCreate" in document["components"]["schemas"]
    for path in ("/v1/responses", "/v1/responses/{response_id}/input_items",
                 "/v1/chat/completions", "/v1/embeddings", "/v1/models"):  # fmt: skip
        assert path in paths
    assert "ResponseCreate" in document["components"]["schemas"]


def test_serve_with_upstream_flag_serves_the_upstreams_models(tmp_path: Path) -> None:
    models = ("up-model-a", "up-model-b")
    with serving_on_fake_upstream(tmp_path, "--upstream-api-key", "sk-up", models=models) as (
        _,
        url,
    ):
        listed = [m["id"] for m in httpx2.get(url + "/models").json()["data"]]
        assert listed == ["up-model-a", "up-model-b"]
        reply = httpx2.post(
            url + "/chat/completions",
            json={"model": "up-model-b", "messages": [{"role": "user", "content": "hi"}]},
        ).json()
        assert reply["choices"][0]["message"]["content"] == "echo: hi [1 messages]"
        assert reply["model"] == "up-model-b"
