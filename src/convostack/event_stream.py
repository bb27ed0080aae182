"""Server-sent events that stop the moment their client goes away.

Starlette's StreamingResponse learns of a disconnect only when a send fails, and with
uvicorn a send to a closed connection returns at once: a stream whose upstream is faster
than its client then never waits, never notices, reads the whole answer and keeps it.
Here the body runs in a task beside one that waits for `http.disconnect`: when the client
leaves, the body's task is cancelled wherever it is (so the turn appends nothing and the
upstream generation is closed), and the body yields to the loop between events so that
the disconnect can be seen even when nothing else would make it wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

SSE = "text/event-stream"
# Proxies such as nginx buffer responses unless told not to; a stream must not wait.
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class EventStream(Response):
    media_type = SSE

    def __init__(self, body: AsyncIterator[bytes], headers: Mapping[str, str] | None = None):
        # As StreamingResponse does: no body, so no content-length.
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self._events = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.create_task(self._stream(send))
        watching = asyncio.create_task(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        if streaming in done:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            streaming.result()  # an error in the body is the route's to report
            return
        log.info("client left a stream; stopping it")
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await streaming

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        try:
            async for chunk in self._events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(0)  # let a disconnect be seen (see the module's doc)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
