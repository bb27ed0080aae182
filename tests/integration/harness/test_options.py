"""The pytest plugin's options, each run in a pytest of its own on a small test file:
model lists parametrise, missing kinds skip, --setup fills defaults that flags override,
--env reaches the tests, ad-hoc and config-file stacks, `server:<preset>:<port>` reuses
a running server, and a suite runs against a URL with a preset."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import free_port, server_process

REPO = Path(__file__).parents[3]
PROBE = """
import os

def test_text(text_model_id):
    print("TEXT", text_model_id)

def test_vision(vision_model_id):
    print("VISION", vision_model_id)

def test_dimension(embedding_dimension):
    assert isinstance(embedding_dimension, int)
    print("DIMENSION", embedding_dimension)

def test_env():
    print("ENV", os.environ.get("H4_FLAG"))

def test_client(client):
    print("MODELS", sorted(m.id for m in client.models.list()))
    conversation = client.conversations.create(metadata={"probe": "yes"})
    print("CONVERSATION", conversation.id)
"""


@pytest.fixture(autouse=True)
def _once(request: pytest.FixtureRequest) -> None:
    only_in_library_mode(request.config, "runs pytest processes of its own: once is enough")


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    (tmp_path / "test_probe.py").write_text(PROBE)
    return tmp_path


def run_pytest(folder: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTACK_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-rs", "-p", "no:cacheprovider",
         "--rootdir", str(folder), *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 5), done.stdout + done.stderr
    return done.stdout


def test_a_model_list_parametrises_and_a_missing_kind_skips(probe: Path) -> None:
    out = run_pytest(probe, "-k", "text or vision", "--text-model=m-one,m-two")
    assert "TEXT m-one" in out
    assert "TEXT m-two" in out
    assert "no --vision-model given" in out
    assert "2 passed, 1 skipped" in out


def test_a_setup_fills_defaults_and_flags_win(probe: Path) -> None:
    out = run_pytest(probe, "-k", "text or dimension", "--setup=ollama")
    assert "TEXT llama3.2:3b" in out
    assert "DIMENSION 384" in out
    out = run_pytest(probe, "-k", "text", "--setup=ollama", "--text-model=mine")
    assert "TEXT mine" in out


def test_env_reaches_the_tests(probe: Path) -> None:
    assert "ENV on" in run_pytest(probe, "-k", "env", "--env", "H4_FLAG=on")


def test_an_ad_hoc_stack(probe: Path) -> None:
    out = run_pytest(probe, "-k", "client", "--stack-config=inference=fake,storage=sqlite")
    assert "MODELS ['fake-model'" in out
    assert "1 passed" in out


def test_an_unknown_ad_hoc_provider_is_one_clear_line(probe: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTACK_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "client",
         "--rootdir", str(probe), "--stack-config=inference=nope"],
        cwd=probe, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4
    assert "inference=embedded|openai_compat|fake" in done.stdout + done.stderr


@pytest.fixture
def upstream_url() -> Iterator[str]:
    with fake_upstream_server(models=["file-model"]) as url:
        yield url


def test_a_config_file_in_process(probe: Path, upstream_url: str) -> None:
    config = probe / "stack.yaml"
    config.write_text(yaml.safe_dump({"upstream": upstream_url, "inference_mode": "live"}))
    out = run_pytest(probe, "-k", "client", f"--stack-config={config}", "--inference-mode=live")
    assert "MODELS ['file-model'" in out


def test_server_preset_and_port_reuses_a_running_server(
    probe: Path, upstream_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("running")
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({"upstream": upstream_url, "db": f"sqlite:///{home}/r.db"}))
    port = free_port()
    with server_process(port, home, ("--config", str(config))):
        out = run_pytest(probe, "-k", "client", f"--stack-config=server:starter:{port}")
        conversation = out.split("CONVERSATION ", 1)[1].split()[0]
        # Created on the server that was already running: no other was started.
        found = httpx2.get(f"http://127.0.0.1:{port}/v1/conversations/{conversation}")
        assert found.status_code == 200


def test_the_base_suite_against_a_url_with_a_preset(tmp_path: Path) -> None:
    """What a deployment's owner runs: a server of theirs (here one replaying the
    recordings), the `base` suite against its URL, the `embedded` setup's models."""
    config = tmp_path / "config.yaml"
    recordings = REPO / "tests" / "integration" / "recordings"
    config.write_text(yaml.safe_dump(
        {"inference_mode": "replay", "recording_dir": str(recordings),
         "db": f"sqlite:///{tmp_path}/url.db"}
    ))  # fmt: skip
    port = free_port()
    with server_process(port, tmp_path, ("--config", str(config))):
        out = run_pytest(
            REPO, "tests/integration", f"--stack-config=http://127.0.0.1:{port}",
            "--setup=embedded", "--suite=base",
        )  # fmt: skip
    assert " passed" in out
    assert "failed" not in out
