"""The web UI in headless Chromium, used as a person would: type the API key, create a
conversation, send a streamed turn and watch the answer grow, read the item list, open
the stored response, delete the conversation; at desktop and phone width. Then files and
vector stores: upload, download, make a store of the file, watch it ingested, search it.

Against a spawned `convostack serve` on the fake upstream (no model) and the test
embedder, with an API key configured. Chromium is Debian's (`scripts/install-chromium.sh`,
run by `make test-ui`), driven by Playwright's Python package through `executable_path`.
Screenshots go to test-artefacts/ui/ (gitignored); docs/ holds copies for the README.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from convostack.auth import hash_key
from convostack.testing.stack import serving_on_fake_upstream

CHROMIUM = os.environ.get("CONVOSTACK_CHROMIUM") or shutil.which("chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "ui"
KEY = "sk-ui-test-0123456789abcdef0123"
# Headless on a machine without network: no GPU, no sandbox (root in CI), and none of
# Chromium's background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: make test-ui installs it")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ui-home")
    config = home / "config.yaml"
    config.write_text(
        f"api_keys:\n  - sha256: {hash_key(KEY)}\n    principal: browser\nembedder: testing-hash\n"
    )
    with serving_on_fake_upstream(home, "--config", str(config)) as (_, url):
        yield url.removesuffix("/v1")


@pytest.fixture
def page(base_url: str) -> Iterator[Page]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 800})
            opened = context.new_page()
            opened.set_default_timeout(TIMEOUT_MS)
            yield opened
        finally:
            browser.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _unlabelled_fields(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        "() => [...document.querySelectorAll('input, select, textarea')]"
        ".filter(e => !e.labels || !e.labels.length).map(e => e.id || e.outerHTML)"
    )
    return found


def test_a_conversation_from_creation_to_deletion(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/ui")
    # Without the key, the page loads but its API call is refused, and says so.
    expect(page.locator("#status")).to_contain_text("API key")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("Key kept")
    assert _unlabelled_fields(page) == []

    # Create one, with metadata.
    page.get_by_label("Metadata of a new conversation").fill("topic=browser test")
    page.get_by_role("button", name="Create conversation").click()
    heading = page.get_by_role("heading", name="Conversation conv_")
    expect(heading).to_be_visible()
    conversation_id = heading.inner_text().split()[-1]
    expect(page.get_by_label("Metadata")).to_have_value("topic=browser test")

    # A streamed turn on it: the fake upstream drips four pieces 0.3 s apart, so the
    # answer is seen partly written before it is whole.
    page.get_by_role("link", name="Continue it in the playground").click()
    expect(page.get_by_label("Conversation")).to_have_value(conversation_id)
    expect(page.get_by_label("Model")).to_have_value("fake-model")
    assert _unlabelled_fields(page) == []
    page.get_by_label("Message").fill("drip:0.3")
    page.get_by_label("Message").press("Tab")  # to Send, by keyboard
    page.keyboard.press("Enter")
    answer = page.locator("#answer")
    expect(answer).not_to_be_empty()
    partial = answer.inner_text()
    expect(page.locator("#outcome")).to_contain_text("completed by fake-model")
    whole = answer.inner_text()
    assert whole == "echo: drip:0.3 [1 messages]"
    assert partial != whole, "the answer appeared whole, not streamed"
    assert whole.startswith(partial)
    _shot(page, "playground")

    # The item list holds the question and the answer, rendered as messages.
    page.get_by_role("link", name="Conversations").click()
    page.get_by_role("link", name=conversation_id).click()
    items = page.locator("#items article")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("drip:0.3")
    expect(items.nth(1)).to_contain_text("echo: drip:0.3")
    assert page.locator("#items article[data-type=message]").count() == 2
    _shot(page, "conversation")

    # The stored response, with its input items.
    page.get_by_role("link", name="Responses").click()
    page.locator("#response-list a").first.click()
    expect(page.get_by_role("heading", name="Input items (1)")).to_be_visible()
    page.get_by_role("button", name="Replay its events").click()
    expect(page.locator("#events")).to_contain_text("response.completed")

    # At phone width the list is one column and still usable.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Conversations").click()
    expect(page.get_by_role("link", name=conversation_id)).to_be_visible()
    _shot(page, "conversations-phone")
    page.set_viewport_size({"width": 1100, "height": 800})
    _shot(page, "conversations")

    # Delete it from the list.
    page.get_by_role("button", name=f"Delete {conversation_id}").click()
    expect(page.locator("#status")).to_contain_text(f"Deleted {conversation_id}")
    expect(page.get_by_role("link", name=conversation_id)).to_have_count(0)
    page.reload()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    expect(page.locator("#conversation-list")).to_contain_text("No conversations yet")


# One item of each kind the conversation page renders in its own way.
KINDS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "What is the weather?"},
    {"type": "function_call", "call_id": "call_9", "name": "get_weather",
     "arguments": "{\"city\": \"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
    {"type": "mcp_list_tools", "server_label": "srv",
     "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]},
    {"type": "mcp_approval_request", "server_label": "srv", "name": "lookup", "arguments": "{}"},
    {"type": "mcp_call", "server_label": "srv", "name": "lookup", "arguments": "{}",
     "output": "found it"},
    {"type": "file_search_call", "queries": ["weather"], "status": "completed",
     "results": [{"file_id": "file_1", "filename": "notes.txt", "score": 0.5,
                  "text": "rain later"}]},
    {"type": "file_search_call", "queries": ["tides", "moon"], "status": "completed",
     "results": None},
    {"type": "compaction", "encrypted_content": "zzz"},
]  # fmt: skip


def test_every_kind_of_item_is_rendered(page: Page, base_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY)
    conversation = client.conversations.create(items=KINDS)  # type: ignore[arg-type]
    page.goto(f"{base_url}/ui")
    page.evaluate(f"() => sessionStorage.setItem('convostack.apiKey', {KEY!r})")
    page.goto(f"{base_url}/ui#/conversations/{conversation.id}")
    items = page.locator("#items article")
    expect(items).to_have_count(len(KINDS))
    assert [items.nth(n).get_attribute("data-type") for n in range(len(KINDS))] == [
        kind["type"] for kind in KINDS
    ]
    for text in ("get_weather({\"city\": \"Paris\"})", "sunny", "lookup", "found it",
                 "notes.txt (0.5)", "rain later", "tides", "moon", "Results not kept",
                 "Earlier turns compacted here"):  # fmt: skip
        expect(page.locator("#items")).to_contain_text(text)
    _shot(page, "item-kinds")
    client.conversations.delete(conversation.id)


def test_the_list_filters_by_metadata_and_pages_with_more(page: Page, base_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY)
    ids = [
        client.conversations.create(metadata={"batch": "paged", "n": str(n)}).id for n in range(22)
    ]
    client.conversations.create(metadata={"batch": "other"})
    page.goto(f"{base_url}/ui")
    page.get_by_label("API key").fill(KEY)
    page.get_by_label("API key").press("Enter")
    page.get_by_label("Metadata key").fill("batch")
    page.get_by_label("equals").fill("paged")
    page.get_by_role("button", name="Filter").click()
    links = page.locator("#conversation-list a")
    expect(links).to_have_count(20)
    assert links.first.inner_text() == ids[-1]  # newest first
    page.get_by_role("button", name="More").click()
    expect(links).to_have_count(22)
    assert links.last.inner_text() == ids[0]
    expect(page.get_by_role("button", name="More")).to_be_hidden()
    for conversation_id in ids:
        client.conversations.delete(conversation_id)


def _with_key(page: Page, base_url: str, route: str) -> None:
    page.goto(f"{base_url}/ui")
    page.evaluate(f"() => sessionStorage.setItem('convostack.apiKey', {KEY!r})")
    page.goto(f"{base_url}/ui#/{route}")


def test_a_file_made_into_a_vector_store_and_searched(
    page: Page, base_url: str, tmp_path: Path
) -> None:
    notes = tmp_path / "lighthouse.txt"
    notes.write_text(
        "The keeper lights the lamp at dusk and winds the clockwork every four hours.\n"
        "Gulls nest on the northern cliffs from April to July.\n"
    )
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY)
    # A file no store can read, there already: it fails to ingest, with a reason.
    unreadable = client.files.create(file=("report.docx", b"PK\x03\x04"), purpose="user_data")
    _with_key(page, base_url, "files")
    expect(page.get_by_role("heading", name="Files")).to_be_visible()
    expect(page.get_by_role("link", name="report.docx")).to_be_visible()
    assert _unlabelled_fields(page) == []

    # Upload one, then see it listed, and the other filtered out by purpose.
    page.get_by_label("File to upload").set_input_files(str(notes))
    page.get_by_label("Purpose", exact=True).select_option("assistants")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#status")).to_contain_text("Uploaded lighthouse.txt as file_")
    file_link = page.get_by_role("link", name="lighthouse.txt")
    expect(file_link).to_be_visible()
    page.get_by_label("Show purpose").select_option("assistants")
    expect(page.locator("#file-list a")).to_have_count(1)
    expect(file_link).to_be_visible()
    _shot(page, "files")

    # Its page, and its content downloaded under its name.
    file_link.click()
    heading = page.get_by_role("heading", name="File file_")
    expect(heading).to_be_visible()
    file_id = heading.inner_text().split()[-1]
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download").click()
    assert downloading.value.suggested_filename == "lighthouse.txt"
    assert Path(downloading.value.path()).read_text() == notes.read_text()

    # A vector store made of it: the file is ingested, then searched by a word in it.
    page.get_by_role("link", name="Vector stores").click()
    assert _unlabelled_fields(page) == []
    page.get_by_label("Name of a new vector store").fill("Coast notes")
    page.get_by_label(f"lighthouse.txt {file_id}").check()
    page.get_by_role("button", name="Create vector store").click()
    store_heading = page.get_by_role("heading", name="Vector store vs_")
    expect(store_heading).to_be_visible()
    store_id = store_heading.inner_text().split()[-1]
    row = page.locator(f"#store-files li[data-file={file_id}]")
    expect(row).to_contain_text("lighthouse.txt")
    expect(row.locator(".file-status")).to_have_text("completed")
    expect(page.locator("#store-summary")).to_contain_text("1 file · completed")
    assert _unlabelled_fields(page) == []
    page.get_by_label("Search this store").fill("gulls")
    page.get_by_label("Search this store").press("Enter")
    results = page.get_by_role("list", name="Search results")
    expect(results).to_contain_text("lighthouse.txt")
    expect(results).to_contain_text("Gulls nest on the northern cliffs")
    _shot(page, "vector-store")
    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, "vector-store-phone")
    page.set_viewport_size({"width": 1100, "height": 800})

    # A turn in the playground with a file_search tool on the store: the fake model calls
    # it, and the call is shown with its query and what it found.
    page.get_by_role("link", name="Playground").click()
    tools = [{"type": "file_search", "vector_store_ids": [store_id]}]
    page.get_by_label("Tools (JSON array)").fill(json.dumps(tools))
    page.get_by_label("Message").fill('call file_search {"query": "gulls"}')
    page.get_by_role("button", name="Send").click()
    call = page.locator("#answer article[data-type=file_search_call]")
    expect(call).to_contain_text("Searched for gulls")
    expect(call).to_contain_text("lighthouse.txt")
    expect(call).to_contain_text("Gulls nest on the northern cliffs")
    expect(page.locator("#outcome")).to_contain_text("completed by fake-model")
    page.go_back()
    expect(store_heading).to_be_visible()

    # The unreadable file added: it fails, saying why; detached again.
    page.get_by_label("File to add").select_option(unreadable.id)
    page.get_by_role("button", name="Add file").click()
    failed = page.locator(f"#store-files li[data-file={unreadable.id}]")
    expect(failed.locator(".file-status")).to_contain_text("failed: report.docx: .docx files")
    expect(failed).to_contain_text("(unsupported_file)")
    expect(page.locator("#store-summary")).to_contain_text("2 files · completed · ")
    expect(page.locator("#store-summary")).to_contain_text("1 failed")
    page.get_by_role("button", name=f"Detach {unreadable.id}").click()
    expect(failed).to_have_count(0)
    expect(page.locator("#store-summary")).to_contain_text("1 file · completed")

    # The store deleted, then the files, from the list.
    page.get_by_role("button", name="Delete this vector store").click()
    expect(page.locator("#store-list")).to_contain_text("No vector stores yet")
    page.get_by_role("navigation").get_by_role("link", name="Files").click()
    for gone in (file_id, unreadable.id):
        page.get_by_role("button", name=f"Delete {gone}").click()
        expect(page.locator("#status")).to_contain_text(f"Deleted {gone}")
    expect(page.locator("#file-list a")).to_have_count(0)
