"""An asyncio transport with no socket behind it, for driving an HTTP protocol
(convostack.connections) in-process: what is written is kept, closing is remembered."""

from __future__ import annotations

import asyncio
from typing import Any


class MemoryTransport(asyncio.Transport):
    def __init__(self, keep: bool = True) -> None:
        super().__init__()
        self.keep = keep  # False: writes go nowhere (benchmarks)
        self.written = bytearray()
        self.closed = False
        self.eof_written = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.keep:
            self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
