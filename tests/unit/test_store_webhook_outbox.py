"""The webhook outbox in the store, on SQLite and PostgreSQL: the database writes an event
when a background response ends (queued then cancelled, claimed then completed) and none
for a foreground response, even one written twice; a claim leases it, a stale claim
cannot settle it, a retry keeps what was delivered, and only old events are dropped."""

from __future__ import annotations

import time

from convostack.storage.background_base import Settle
from convostack.storage.base import Store, StoredResponse, Turn

OWNER = "tenant"


def _response(response_id: str, status: str) -> StoredResponse:
    return StoredResponse(response_id, int(time.time()), "m", status, None, None, b"{}", b"[]")


async def test_events_come_from_background_ends_only(store: Store) -> None:
    now = int(time.time())
    await store.save_turn(OWNER, Turn(None, [], _response("resp_fg", "in_progress")))
    await store.save_turn(OWNER, Turn(None, [], _response("resp_fg", "completed")))
    assert await store.claim_webhook(now, 30) is None  # foreground: no event

    await store.enqueue_response(OWNER, _response("resp_cancel", "queued"), b"sealed", [])
    settle = Settle("resp_cancel", "cancelled", b"{}", ("queued", "in_progress"))
    assert await store.settle_response(settle, now)
    await store.enqueue_response(OWNER, _response("resp_run", "queued"), b"sealed", [])
    job = await store.claim_response(now, 30)
    assert job is not None
    assert job.response_id == "resp_run"
    done = Settle("resp_run", "failed", b"{}", ("in_progress",), attempts=job.attempts)
    assert await store.settle_response(done, now)

    first = await store.claim_webhook(now, 30)
    second = await store.claim_webhook(now, 30)
    assert first is not None
    assert second is not None
    assert [(first.response_id, first.type), (second.response_id, second.type)] == [
        ("resp_cancel", "response.cancelled"), ("resp_run", "response.failed"),
    ]  # fmt: skip
    assert await store.claim_webhook(now, 30) is None  # both leased

    await store.settle_webhook(first, ["a"], now + 5)  # tried: endpoint "a" took it
    assert await store.claim_webhook(now + 4, 30) is None
    again = await store.claim_webhook(now + 31, 30)  # due again (and second's lease ran out)
    assert again is not None
    assert (again.response_id, again.delivered, again.attempts) == ("resp_cancel", ["a"], 2)
    await store.settle_webhook(first, [], None)  # a stale claim changes nothing
    await store.settle_webhook(again, ["a", "b"], None)  # delivered: gone
    rest = await store.claim_webhook(now + 62, 30)
    assert rest is not None
    assert rest.response_id == "resp_run"

    assert await store.drop_webhooks(now - 60, 100) == 0  # too new to drop
    assert await store.drop_webhooks(now + 10, 100) == 1  # the database clock may be a second on
    assert await store.claim_webhook(now + 1000, 30) is None
