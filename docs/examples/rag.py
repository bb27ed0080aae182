"""Retrieval-augmented generation, offline, end to end: upload a document, index it
(the embedded MiniLM embedder), search it, and let the embedded model answer from it
with a citation. convostack runs in this process; nothing is fetched from the network
(after `make install`, or `pip install convostack` with its model fetched once).

    python docs/examples/rag.py

Against a running `convostack serve`, make the client with
`openai.OpenAI(base_url="http://127.0.0.1:8321/v1", api_key="none")` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import openai

from convostack.config import Config
from convostack.testing.stack import library_target

HANDBOOK = (
    b"# Staff handbook\n\nEvery employee gets 30 days of paid holiday a year.\n\n"
    b"Parking permits are issued by the front desk on the ground floor.\n"
)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as home,
        library_target(Config(home=Path(home))) as target,
        target.http_client() as http,
    ):
        run(openai.OpenAI(base_url=target.base_url, api_key="none", http_client=http))


def run(client: openai.OpenAI) -> None:
    document = client.files.create(file=("handbook.md", HANDBOOK), purpose="assistants")
    store = client.vector_stores.create(name="handbook")
    indexed = client.vector_stores.files.create_and_poll(
        file_id=document.id, vector_store_id=store.id, poll_interval_ms=200
    )
    print("indexed:", indexed.status)

    for hit in client.vector_stores.search(store.id, query="where do I get a parking permit?"):
        print(f"search: {hit.score:.2f} {hit.filename}: {hit.content[0].text[:50]!r}")

    tools: list[Any] = [{"type": "file_search", "vector_store_ids": [store.id]}]
    response = client.responses.create(
        model="gpt-4.1",  # an alias of the embedded model
        input="Where are parking permits issued?",
        tools=tools,
        tool_choice="required",  # a small local model searches when told to
        include=["file_search_call.results"],
        temperature=0,  # the same answer each run
        max_output_tokens=200,  # a small model can ramble: bound each model call
    )
    print("searched for:", getattr(response.output[0], "queries", None))
    print("answer:", response.output_text)
    for part in getattr(response.output[-1], "content", []):
        for annotation in part.annotations:
            print("cited:", annotation.filename)


if __name__ == "__main__":
    main()
