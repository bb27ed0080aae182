"""The seed pull request's whole manual test script, both parts, with the stock client:
the Conversations calls, then three turns on a conversation and a fake conversation id."""

from __future__ import annotations

import openai
import pytest

from convostack.testing.upstream import Upstream


def test_seed_manual_script_responses_part(client: openai.OpenAI, upstream: Upstream) -> None:
    # test_conversation_responses_create
    conversation = client.conversations.create()
    response = client.responses.create(
        model="gpt-4.1",
        input=[{"role": "user", "content": "What are the 5 Ds of dodgeball?"}],
        conversation=conversation.id,
    )
    assert response.status == "completed"
    assert response.conversation is not None
    assert response.conversation.id == conversation.id
    assert response.output_text == "echo: What are the 5 Ds of dodgeball? [1 messages]"

    # testing response retrieval (the script retrieves the conversation)
    assert client.conversations.retrieve(conversation.id).id == conversation.id

    # testing responses follow up, twice
    for n, word in ((1, "second"), (2, "third")):
        content = f"Repeat what you just said but add 'this is my {word} time saying this'"
        followup = client.responses.create(
            model="gpt-4.1", input=[{"role": "user", "content": content}],
            conversation=conversation.id,
        )  # fmt: skip
        assert followup.output_text == f"echo: {content} [{1 + 2 * n} messages]"
        items = client.conversations.items.list(conversation.id)
        assert len(items.data) == 2 + 2 * n
        # The model saw the whole conversation, in order, ending with this turn's input.
        sent = upstream.last_messages()
        assert sent[0]["content"] == "What are the 5 Ds of dodgeball?"
        assert sent[-1]["content"] == content

    roles = [getattr(i, "role", None) for i in client.conversations.items.list(conversation.id)]
    assert roles == ["assistant", "user"] * 3  # newest first

    # test_response_with_fake_conv_id
    fake_conv_id = "conv_zzzzzzzzz5dc81908289d62779d2ac510a2b0b602ef00a44"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(
            model="gpt-4.1", input=[{"role": "user", "content": "say hello"}],
            conversation=fake_conv_id,
        )  # fmt: skip
    assert caught.value.message.endswith(f"Conversation with id '{fake_conv_id}' not found.")
