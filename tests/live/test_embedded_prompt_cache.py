"""The embedded model's prompt cache, seen through the stock openai client: a conversation
seen before reads only what is new, several conversations keep their cache while they
alternate, and a history changed under the cache (an item deleted, an item added through
the Items API) is read again from the first change on, never served stale.

What the model read is the runtime's own account of it: `usage.input_tokens_details.
cached_tokens` is the part of the prompt resumed from the cache, so `input_tokens -
cached_tokens` is what was evaluated anew.
"""

from __future__ import annotations

import uuid

import openai
from openai.types.responses import Response, ResponseUsage

# A new message and a short answer: what a returning turn may read anew, at most.
NEW_PART = 64


def _history(tag: str) -> list[dict[str, str]]:
    """Six messages, the first two short (a unique tag, so no other test's prompt shares
    more than the chat template's opening), the last four long."""
    long = " ".join(f"The {word} of {tag} is kept in the harbour." for word in ("boat", "net"))
    return [
        {"role": "user", "content": f"Hello, I am {tag}."},
        {"role": "assistant", "content": f"Hello {tag}."},
        {"role": "user", "content": f"Tell me about the sea. {long}"},
        {"role": "assistant", "content": f"The sea is wide and deep. {long}"},
        {"role": "user", "content": f"And about the sky? {long}"},
        {"role": "assistant", "content": f"The sky is blue and high. {long}"},
    ]


def _conversation(client: openai.OpenAI, opening: list[dict[str, str]] | None = None) -> str:
    tag = uuid.uuid4().hex[:12]
    items = (opening or []) + _history(tag)
    return client.conversations.create(items=items).id  # type: ignore[arg-type]


def _turn(client: openai.OpenAI, model: str, conversation: str, text: str) -> ResponseUsage:
    response: Response = client.responses.create(
        model=model, conversation=conversation, input=text, temperature=0, max_output_tokens=16
    )
    assert response.usage is not None
    return response.usage


def _fresh(usage: ResponseUsage) -> int:
    return usage.input_tokens - usage.input_tokens_details.cached_tokens


def test_a_returning_conversation_reads_only_what_is_new(
    client: openai.OpenAI, text_model_id: str
) -> None:
    conversation = _conversation(client)
    first = _turn(client, text_model_id, conversation, "What colour is the sea?")
    assert _fresh(first) > first.input_tokens // 2  # never seen: read in full
    second = _turn(client, text_model_id, conversation, "And the sky?")
    assert second.input_tokens > first.input_tokens
    assert second.input_tokens_details.cached_tokens >= first.input_tokens
    assert _fresh(second) <= NEW_PART


def test_alternating_conversations_both_keep_their_cache(
    client: openai.OpenAI, text_model_id: str
) -> None:
    # The same long system message opens every conversation: a runtime that resumed a
    # prompt from any state sharing enough with it would read each history again.
    rules = " ".join(f"Rule {n}: answer kindly about the number {n}." for n in range(24))
    opening = [{"role": "system", "content": rules}]
    conversations = [_conversation(client, opening) for _ in range(2)]
    firsts = [_turn(client, text_model_id, c, "The sea?") for c in conversations]
    for conversation, first in zip(conversations, firsts, strict=True):
        again = _turn(client, text_model_id, conversation, "And the sky?")
        assert again.input_tokens_details.cached_tokens >= first.input_tokens
        assert _fresh(again) <= NEW_PART


def test_a_deleted_item_is_read_again_from_where_it_was(
    client: openai.OpenAI, text_model_id: str
) -> None:
    conversation = _conversation(client)
    first = _turn(client, text_model_id, conversation, "What colour is the sea?")
    deleted = client.conversations.items.list(conversation, order="asc").data[2].id
    assert deleted is not None
    client.conversations.items.delete(deleted, conversation_id=conversation)
    edited = _turn(client, text_model_id, conversation, "What colour is the sea?")
    # Only the opening (the template and the two short messages) precedes the deleted
    # item: everything after it is read anew, though the cache holds the whole old prompt.
    assert edited.input_tokens_details.cached_tokens < first.input_tokens // 4
    assert _fresh(edited) > edited.input_tokens // 2


def test_an_item_added_through_the_items_api_is_read(
    client: openai.OpenAI, text_model_id: str
) -> None:
    conversation = _conversation(client)
    first = _turn(client, text_model_id, conversation, "What colour is the sea?")
    added = "Note this: " + " ".join(f"stone {n} lies on the beach." for n in range(12))
    client.conversations.items.create(
        conversation, items=[{"type": "message", "role": "user", "content": added}]
    )
    second = _turn(client, text_model_id, conversation, "And the sky?")
    assert second.input_tokens_details.cached_tokens >= first.input_tokens
    # The added message (about 80 tokens) is part of what was read anew.
    assert _fresh(second) > 60
