"""The Stack: the configured store and services, started and stopped together."""

from __future__ import annotations

import logging

from convostack.config import Config
from convostack.conversations.service import ConversationService
from convostack.storage import open_store
from convostack.storage.base import Store

log = logging.getLogger(__name__)


class Stack:
    def __init__(self, config: Config, store: Store | None = None):
        self.config = config
        self.store = store or open_store(config.database_url)
        self.conversations = ConversationService(self.store)

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()
