"""Text out of an uploaded file, for chunking: plain text (and source code), Markdown,
HTML, JSON and PDF.

The kind is taken from the file name's extension, then the content type, then the bytes
themselves (`%PDF-`, an HTML doctype). Anything else that is not text is refused with an
ExtractionError whose message is meant for the file's `last_error`: it names the file
and says what would work. PDF text comes from `pypdf` (pure Python, no system library);
HTML from the standard library's parser, without scripts, styles and markup.
"""

from __future__ import annotations

import io
import json
import logging
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

log = logging.getLogger(__name__)

HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
JSON_EXTENSIONS = {".json"}
PDF_EXTENSIONS = {".pdf"}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Formats people upload that are not text and that we cannot read: named in the error.
OFFICE_EXTENSIONS = {".doc", ".docx", ".pptx", ".ppt", ".xls", ".xlsx", ".odt", ".rtf"}
SUPPORTED = "text, Markdown, HTML, JSON, PDF or source code"
_SNIFF_BYTES = 8192


class ExtractionError(Exception):
    """The file holds no text we can read; the message says why, for `last_error`."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def extract_text(data: bytes, filename: str, content_type: str | None) -> str:
    """The file's text, newlines normalised to \\n. Raises ExtractionError for a binary,
    unreadable or empty file."""
    suffix = PurePosixPath(filename).suffix.lower()
    media = (content_type or "").split(";")[0].strip().lower()
    if suffix in OFFICE_EXTENSIONS:
        raise ExtractionError(
            f"{filename}: {suffix} files are not supported; upload it as PDF or text ({SUPPORTED})."
        )
    if suffix in PDF_EXTENSIONS or media == "application/pdf" or data.startswith(b"%PDF-"):
        text = _pdf_text(data, filename)
    else:
        decoded = _decode(data, filename)
        looks_like_html = not suffix and decoded[:512].lstrip().lower().startswith(
            ("<!doctype html", "<html")
        )
        if suffix in HTML_EXTENSIONS or media in _HTML_TYPES or looks_like_html:
            text = html_text(decoded)
        elif suffix in JSON_EXTENSIONS or media == "application/json":
            text = _json_text(decoded, filename)
        else:
            text = decoded
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ExtractionError(f"{filename}: the file holds no text to search.")
    return text


def _decode(data: bytes, filename: str) -> str:
    """UTF-8 (a BOM allowed), UTF-16 with a BOM, else Windows-1252 when the bytes look
    like text; NUL bytes or many control characters mean a binary file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        raise _binary(filename)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13))
    if controls > len(head) // 100:
        raise _binary(filename)
    return data.decode("cp1252", errors="replace")


def _binary(filename: str) -> ExtractionError:
    return ExtractionError(
        f"{filename}: this is a binary file, not text; upload {SUPPORTED} files."
    )


def _json_text(decoded: str, filename: str) -> str:
    """The JSON, parsed and laid out again one value a line, without escapes: keys and
    their values stay together in a chunk, and non-ASCII text stays searchable."""
    try:
        value = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"{filename}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix it or upload it as a .txt file."
        ) from None
    return json.dumps(value, indent=1, ensure_ascii=False)


def _pdf_text(data: bytes, filename: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError(
                f"{filename}: the PDF is encrypted; upload a copy without a password."
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        log.debug("pypdf could not read %s", filename, exc_info=True)
        raise ExtractionError(f"{filename}: the PDF could not be read ({exc}).") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise ExtractionError(
            f"{filename}: the PDF holds no text (scanned pages are images; run OCR on it first)."
        )
    return text


# --- HTML -------------------------------------------------------------------------------

_SKIPPED = {"script", "style", "noscript", "template", "svg"}
_BLOCKS = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "title", "dt", "dd",
    "hr", "main", "nav", "aside", "figcaption",
}  # fmt: skip
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skipping.append(tag)
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML document (its title first), one block a line."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    title = " ".join("".join(parser.title).split())
    body = _SPACES.sub(" ", "".join(parser.parts))
    lines = "\n".join(line.strip() for line in body.split("\n"))
    text = _BLANK_LINES.sub("\n", lines).strip()
    return f"{title}\n\n{text}" if title and not text.startswith(title) else text
