"""/metrics from `convostack serve`: right with several workers (each writes its counts
to a file of its own, any of them answers a scrape with the sum), and on a port of its
own (served by the supervisor, with workers)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
import yaml

from convostack.observability.metrics import FLUSH_SECONDS
from convostack.testing.stack import free_port, serving_on_fake_upstream
from convostack.testing.upstream import FAKE_MODEL

from .test_metrics import delta, scrape

CREATED = {"method": "POST", "route": "/v1/conversations", "status": "200"}
REQUESTS = 40


def _config(home: Path, **settings: object) -> str:
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump({"metrics": True, "access_log": False, **settings}))
    return str(path)


def _create_conversations(url: str, count: int) -> set[str]:
    """`count` conversations; the request ids of their answers."""

    def create(_: int) -> str:
        # A connection each: the kernel spreads new connections over the workers.
        response = httpx2.post(url + "/conversations", json={})
        assert response.status_code == 200
        return response.headers["x-request-id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return set(pool.map(create, range(count)))


def test_two_workers_count_together(tmp_path: Path) -> None:
    args = ("--workers", "2", "--config", _config(tmp_path))
    with serving_on_fake_upstream(tmp_path, *args, models=(FAKE_MODEL,)) as (_, url):
        root = url.removesuffix("/v1")
        with httpx2.Client(base_url=root) as http:
            before = scrape(http)
        request_ids = _create_conversations(url, REQUESTS)
        assert len(request_ids) == REQUESTS  # unique across the workers too
        time.sleep(FLUSH_SECONDS + 0.5)  # the other worker's counts are that much behind
        for _ in range(6):  # whichever worker answers, the same sum
            with httpx2.Client(base_url=root) as http:
                after = scrape(http)
            assert delta(before, after, "convostack_requests_total", **CREATED) == REQUESTS
        files = list((tmp_path / "prometheus").glob("*.json"))
        assert len(files) == 2, "both workers should have served some of the requests"


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_on_a_port_of_their_own(tmp_path: Path, workers: int) -> None:
    port = free_port()
    args = ("--workers", str(workers), "--config", _config(tmp_path, metrics_port=port))
    with serving_on_fake_upstream(tmp_path, *args, models=(FAKE_MODEL,)) as (_, url):
        _create_conversations(url, 5)
        time.sleep(FLUSH_SECONDS + 0.5)  # for the supervisor, which reads the workers' files
        assert httpx2.get(url.removesuffix("/v1") + "/metrics").status_code == 404
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as http:
            counted = scrape(http)
        assert delta({}, counted, "convostack_requests_total", **CREATED) == 5
