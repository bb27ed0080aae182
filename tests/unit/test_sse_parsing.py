"""The incremental SSE parser of the openai_compat provider, fed bytes cut anywhere."""

from __future__ import annotations

import random

import pytest

from convostack.providers.openai_compat import SSEDecoder


def decode(pieces: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.end()


def every_split(stream: bytes) -> list[list[bytes]]:
    """The stream in one piece, byte by byte, and cut in two at every position."""
    cuts = [[stream], [stream[i : i + 1] for i in range(len(stream))]]
    cuts += [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    return cuts


CHAT_STREAM = (
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
    b"data: [DONE]\n\n"
)
CHAT_EVENTS = [
    b'{"choices":[{"delta":{"content":"Hel"}}]}',
    b'{"choices":[{"delta":{"content":"lo"}}]}',
    b"[DONE]",
]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events_survive_every_split_with_every_line_ending(newline: bytes) -> None:
    stream = CHAT_STREAM.replace(b"\n", newline)
    for pieces in every_split(stream):
        assert decode(pieces) == CHAT_EVENTS, pieces


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    # A `\r` at the end of one read and its `\n` at the start of the next must not be
    # read as two line ends, which would be a blank line ending the event early.
    pieces = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert decode(pieces) == [b"a\nb"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b"data: first\ndata: second\ndata:third\n\n"
    for pieces in every_split(stream):
        assert decode(pieces) == [b"first\nsecond\nthird"]


def test_comments_and_other_fields_are_ignored() -> None:
    stream = (
        b": keep-alive\n\n"
        b"event: message\nid: 7\nretry: 1000\n: note\ndata: {}\n\n"
        b":another comment\n"
        b"\n"
    )
    for pieces in every_split(stream):
        assert decode(pieces) == [b"{}"]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert decode([b"data:  two spaces\n\n", b"data:none\n\n"]) == [b" two spaces", b"none"]


def test_blank_lines_without_data_make_no_event() -> None:
    assert decode([b"\n\n\n", b"event: ping\n\n"]) == []


def test_last_event_without_a_blank_line_is_flushed_at_the_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: [DONE]') == [b'{"a":1}']
    assert decoder.end() == [b"[DONE]"]


def test_events_come_out_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\ndata: tw") == [b"one"]
    assert decoder.feed(b"o\n\n") == [b"two"]


def test_utf8_split_inside_a_character() -> None:
    stream = 'data: {"content":"héllo ✓"}\n\n'.encode()
    for pieces in every_split(stream):
        (event,) = decode(pieces)
        assert event.decode() == '{"content":"héllo ✓"}'


def test_random_cuts_of_a_long_stream() -> None:
    rng = random.Random(7)
    events = [f'{{"n":{n},"text":"{"x" * rng.randrange(40)}"}}'.encode() for n in range(200)]
    stream = b"".join(b"data: " + e + rng.choice([b"\n\n", b"\r\n\r\n", b"\r\r"]) for e in events)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(stream)), 50))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert decode(pieces) == events
