"""Files past their `expires_after` are deleted by a sweep that every serving process
runs now and then. Reads stop showing an expired file at once, by the database's clock
(storage's `LIVE` condition): the sweep frees the space, it does not decide what is seen.
Each delete takes a batch of expired rows (SKIP LOCKED on PostgreSQL), so replicas
sweeping together neither wait on nor repeat each other's work."""

from __future__ import annotations

import asyncio
import logging
import time

from convostack.process_task import ProcessTask
from convostack.storage.base import Store, StoreUnavailable

log = logging.getLogger(__name__)

BATCH = 100  # files per transaction: a backlog is cleared in short writes


class FileExpiry:
    def __init__(self, store: Store, *, every_seconds: float):
        self._store = store
        self._every = every_seconds
        self.task = ProcessTask("convostack-file-expiry", self._work)

    async def sweep(self) -> int:
        """Delete every file expired by now; how many."""
        total = 0
        while True:
            deleted = await self._store.delete_expired_files(int(time.time()), BATCH)
            total += deleted
            if deleted < BATCH:
                return total

    async def _work(self) -> None:
        while True:
            try:
                if deleted := await self.sweep():
                    log.info("deleted %d expired files", deleted)
            except StoreUnavailable as exc:
                log.warning("expired files not swept: %s", exc)
            except Exception:
                log.exception("sweeping expired files failed")
            await asyncio.sleep(self._every)
