"""retrieval/extract.py: text out of text, Markdown, HTML, JSON and PDF files, and a clear
ExtractionError for what holds none."""

from __future__ import annotations

import pytest

from convostack.retrieval.extract import ExtractionError, extract_text


def minimal_pdf(lines: list[str], encrypted: bool = False) -> bytes:
    """A one-page PDF showing `lines` in Helvetica, written here byte by byte."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


def test_plain_text_and_newlines() -> None:
    assert extract_text(b"  one\r\ntwo\rthree\n", "notes.txt", "text/plain") == "one\ntwo\nthree"
    assert extract_text("caf\u00e9".encode(), "a.py", None) == "caf\u00e9"


def test_encodings() -> None:
    assert extract_text(b"\xef\xbb\xbfbom", "a.txt", None) == "bom"
    assert extract_text("h\u00e9llo".encode("utf-16"), "a.txt", None) == "h\u00e9llo"
    assert extract_text("na\u00efve caf\u00e9".encode("cp1252"), "a.txt", None) == (
        "na\u00efve caf\u00e9"
    )


def test_markdown_is_kept_as_written() -> None:
    markdown = b"# Title\n\nSome *emphasis* and a [link](http://x)."
    assert extract_text(markdown, "README.md", "text/markdown") == markdown.decode()


def test_html_gives_the_visible_text() -> None:
    html = (
        b"<!DOCTYPE html><html><head><title>Refunds</title><style>p{color:red}</style>"
        b"<script>track()</script></head><body><h1>Refund policy</h1><p>Within 30 days"
        b" &amp; with a receipt.</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert extract_text(html, "policy.html", None) == (
        "Refunds\n\nRefund policy\nWithin 30 days & with a receipt.\none\ntwo"
    )
    # Known by its content type, or by its doctype when the name says nothing.
    assert extract_text(b"<p>x</p>", "page", "text/html; charset=utf-8") == "x"
    assert extract_text(b"<!doctype html><p>y</p>", "upload", None) == "y"


def test_json_is_laid_out_with_its_text_readable() -> None:
    text = extract_text(b'{"city": "M\\u00fcnchen", "tags": ["a", "b"]}', "d.json", None)
    assert '"city": "M\u00fcnchen"' in text
    assert '"a"' in text.splitlines()[3]


def test_invalid_json_says_where() -> None:
    with pytest.raises(ExtractionError, match=r"bad\.json: not valid JSON .* line 1"):
        extract_text(b'{"a": ', "bad.json", "application/json")


def test_pdf_text() -> None:
    pdf = minimal_pdf(["Hello PDF world", "second line"])
    assert extract_text(pdf, "doc.pdf", "application/pdf") == "Hello PDF world\nsecond line"
    # Known by its first bytes too.
    assert "Hello" in extract_text(pdf, "upload.bin", None)


def test_a_pdf_without_text_or_broken() -> None:
    with pytest.raises(ExtractionError, match="holds no text"):
        extract_text(minimal_pdf([]), "scan.pdf", None)
    with pytest.raises(ExtractionError, match="could not be read"):
        extract_text(b"%PDF-1.4\nnothing else", "broken.pdf", None)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.txt", "holds no text"),
        (b" \n\t ", "blank.md", "holds no text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.png", "binary file"),
        (bytes(range(256)) * 4, "blob.txt", "binary file"),
        (b"PK\x03\x04 whatever", "report.docx", r"\.docx files are not supported"),
    ],
)
def test_what_holds_no_text_is_refused(data: bytes, name: str, message: str) -> None:
    with pytest.raises(ExtractionError, match=message) as caught:
        extract_text(data, name, None)
    assert caught.value.message.startswith(name)
