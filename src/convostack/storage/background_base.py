"""The store's part for background responses: the responses table as a queue, and the
stream events of background turns.

A background response is a row of `responses` whose status moves `queued` ->
`in_progress` (claimed: a lease, `attempts` + 1) -> `completing` (its turn is being
written) -> a final status. Every write of a claimed row names the claim (`attempts`),
so a worker that lost its row (cancelled, deleted, or taken again after its lease ran
out) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from convostack.storage.base import StoredResponse

# Statuses a background row has while it is not finished.
QUEUED = "queued"
RUNNING = ("in_progress", "completing")
CANCELLABLE = ("queued", "in_progress")
# The condition of the partial index `responses_queue` (migrations), written as there so
# that both databases use that index to find work, never a scan of every response.
UNFINISHED = "status IN ('queued', 'in_progress', 'completing')"
# responses.events: none kept, kept, pruned.
EVENTS_NONE, EVENTS_KEPT, EVENTS_PRUNED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class BackgroundJob:
    """A claimed background response: what its worker needs to run it."""

    owner: str
    response_id: str
    created_at: int
    attempts: int  # the claim: 1 for a first run; more means a claim whose worker died
    request: bytes  # the sealed request body
    streamed: bool  # its events are kept
    body: bytes  # the response as stored when claimed


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events after a point, with the response's status and events state then."""

    events: list[tuple[int, bytes]]  # (sequence_number, event JSON)
    status: str
    events_state: int


@dataclass(frozen=True, slots=True)
class Settle:
    """A final write of a background row: its status and body, where it is in one of
    `from_statuses` (and, with `attempts`, still that claim's); `event`, when given, is
    appended after its last event."""

    response_id: str
    status: str
    body: bytes
    from_statuses: tuple[str, ...]
    attempts: int | None = None
    event: bytes | None = None


class BackgroundStore(Protocol):
    async def enqueue_response(
        self, owner: str, response: StoredResponse, request: bytes, first_event: bytes | None
    ) -> None:
        """Stores a `queued` background response with its sealed request; with
        `first_event` its events are kept, that one first (sequence number 0)."""
        ...

    async def claim_response(self, now: int, lease_seconds: int) -> BackgroundJob | None:
        """Takes the oldest queued background response, or one whose lease ran out."""
        ...

    async def renew_response(
        self, response_id: str, attempts: int, until: int, body: bytes | None = None
    ) -> bool:
        """Extends the claim's lease (and writes `body` when given); False when the row
        is no longer this claim's (cancelled, deleted, taken again)."""
        ...

    async def commit_response(self, response_id: str, attempts: int, now: int) -> bool:
        """Marks a running claim `completing` (it can no longer be cancelled), before its
        turn is written; False when the claim was lost."""
        ...

    async def settle_response(self, settle: Settle, now: int) -> bool:
        """The final write of a row not finished by its turn's own write (failed,
        cancelled, withheld); False when the row was not in a state to take it."""
        ...

    async def append_events(self, response_id: str, first: int, events: list[bytes]) -> None:
        """Stores events numbered `first`, `first` + 1, ..."""
        ...

    async def read_events(self, owner: str, response_id: str, after: int) -> EventPage:
        """The events after `after`, oldest first (a bounded page). Raises
        ResponseMissing."""
        ...

    async def prune_events(self, finished_before: int) -> int:
        """Deletes the events of responses finished before then; how many responses."""
        ...
