"""An unexpected exception is a logged 500 whose body reveals nothing internal."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from convostack.config import Config
from convostack.stack import Stack
from convostack.storage.base import ConversationRow
from convostack.storage.sqlite import SqliteStore
from convostack.testing.stack import library_target


class ExplodingStore(SqliteStore):
    """A real store whose reads fail with an internal error, as a bug would."""

    async def get_conversation(self, owner: str, conversation_id: str) -> ConversationRow:
        raise RuntimeError("secret internal detail: /etc/passwd at line 42")


def test_unexpected_error_is_a_generic_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(home=tmp_path)
    stack = Stack(config, store=ExplodingStore(tmp_path / "db.sqlite"))
    with library_target(config, stack) as target, target.http_client() as http:
        client = openai.OpenAI(
            base_url=target.base_url, api_key="k", http_client=http, max_retries=0
        )
        conversation = client.conversations.create()  # writes still work
        with pytest.raises(openai.InternalServerError) as caught:
            client.conversations.retrieve(conversation.id)
    assert caught.value.status_code == 500
    assert caught.value.body == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert "secret" not in str(caught.value.response.text)
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)
