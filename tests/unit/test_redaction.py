"""The scrubbing of upstream text and URLs (redaction.py)."""

from __future__ import annotations

import pytest

from convostack.redaction import Scrubber, split_userinfo, strip_userinfo


def test_split_userinfo_decodes_and_strips() -> None:
    assert split_userinfo("http://u%40x:p%3Aw@host:8/v1") == ("http://host:8/v1", "u@x", "p:w")
    assert split_userinfo("http://host/v1") == ("http://host/v1", None, None)


def test_strip_userinfo_in_text() -> None:
    text = "failed: https://alice:pw@example.com/v1 and http://bob@h/x"
    assert strip_userinfo(text) == (
        "failed: https://[redacted]@example.com/v1 and http://[redacted]@h/x"
    )


@pytest.mark.parametrize(
    "leak",
    [
        "Authorization: Bearer abc.def-ghi",
        '{"authorization": "Basic dXNlcjpwdw=="}',
        "x-api-key: 12345678",
        "token sk-proj-ABCDEFGH12345678",
        "bearer eyJhbGciOi.payload.sig",
        "the configured one: my-long-operator-secret",
    ],
)
def test_credentials_are_blanked(leak: str) -> None:
    scrubbed = Scrubber(["my-long-operator-secret"])(leak)
    assert "[redacted]" in scrubbed
    for part in ("abc.def", "dXNlcjpwdw", "12345678", "ABCDEFGH", "payload", "operator"):
        assert part not in scrubbed


def test_a_secret_across_the_cut_is_blanked_whole() -> None:
    secret = "operator-secret-0123456789"
    text = "x" * 90 + secret + "y" * 100
    scrubbed = Scrubber([secret], limit=100)(text)
    assert "operator" not in scrubbed
    assert scrubbed.endswith("... (cut at 100 characters)")
    assert len(scrubbed) <= 100 + len("... (cut at 100 characters)")


def test_ordinary_text_is_kept() -> None:
    text = "This model's maximum context length is 8192 tokens; you asked for 9000."
    assert Scrubber(["sk-operator-key"])(text) == text
