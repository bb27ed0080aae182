"""Replicas for tests: `convostack serve` processes on a shared database, each with an
`openai` client, serving an upstream (e.g. the fake upstream)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai

from convostack.testing.stack import free_port, server_process


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    client: openai.OpenAI
    base_url: str  # ends in /v1


@contextlib.contextmanager
def replica(db: str, upstream_url: str, env: Mapping[str, str] | None = None) -> Iterator[Replica]:
    """One `convostack serve` on the database `db`, serving `upstream_url`'s models (with
    `env`'s settings, `CONVOSTACK_<FIELD>`); stopped (SIGTERM, then SIGKILL) afterwards
    unless it is dead already."""
    home = Path(tempfile.mkdtemp(prefix="convostack-replica-"))
    port = free_port()
    with (
        server_process(port, home, ("--db", db, "--upstream", upstream_url), env) as process,
        httpx2.Client(timeout=60) as http,
    ):
        base_url = f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=base_url, api_key="k", http_client=http, max_retries=0)
        yield Replica(process, client, base_url)
