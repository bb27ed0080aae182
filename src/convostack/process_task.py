"""A task a serving process runs beside its requests for as long as it serves (a queue's
worker, a sweep), started with the stack and cancelled when it closes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class ProcessTask:
    def __init__(self, name: str, work: Callable[[], Awaitable[None]]):
        self._name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        async def run() -> None:
            await self._work()

        self._task = asyncio.create_task(run(), name=self._name)

    async def close(self) -> None:
        """Cancel it and wait until it has stopped (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
