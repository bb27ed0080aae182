"""Vector stores through the stock openai client: files ingested off the request path
(polled to `completed`), hybrid search with filters and ranking options, batches, and
the bad inputs of issue 14."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from tests.integration.vector_stores.conftest import wait_done

DOCS = {
    "rivers.md": b"# Rivers\n\nThe Danube flows through Vienna and Budapest into the Black Sea.",
    "volcanoes.txt": b"Mount Etna on Sicily is among the most active volcanoes in Europe.",
    "baking.html": b"<html><body><p>Sourdough bread needs a starter, flour, water and salt."
    b"</p></body></html>",
}


def _upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, data), purpose="assistants").id


@pytest.fixture(scope="module")
def library(client: openai.OpenAI) -> tuple[str, dict[str, str]]:
    """A store holding DOCS, each with a `topic` attribute, all completed."""
    store = client.vector_stores.create(name="library", metadata={"k": "v"})
    ids = {}
    for n, (name, data) in enumerate(DOCS.items()):
        file_id = _upload(client, name, data)
        done = client.vector_stores.files.create_and_poll(
            file_id=file_id, vector_store_id=store.id, poll_interval_ms=100,
            attributes={"topic": name.split(".")[0], "rank": n, "public": n != 1},
        )  # fmt: skip
        assert done.status == "completed", done.last_error
        ids[name] = file_id
    return store.id, ids


def test_store_counts_and_usage(client: openai.OpenAI, library: tuple[str, dict[str, str]]) -> None:
    store = client.vector_stores.retrieve(library[0])
    assert store.status == "completed"
    assert store.file_counts.completed == 3
    assert store.file_counts.total == 3
    assert store.usage_bytes > 0
    assert store.metadata == {"k": "v"}
    listed = client.vector_stores.files.list(library[0], filter="completed")
    assert {f.id for f in listed.data} == set(library[1].values())
    content = client.vector_stores.files.content(library[1]["rivers.md"],
                                                 vector_store_id=library[0])  # fmt: skip
    assert "Danube" in " ".join(part.text or "" for part in content)


def test_search_finds_the_right_file(
    client: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    page = client.vector_stores.search(library[0], query="Which river flows through Vienna?")
    assert page.data[0].filename == "rivers.md"
    assert 0 < page.data[0].score <= 1
    assert "Danube" in page.data[0].content[0].text
    assert page.data[0].attributes == {"topic": "rivers", "rank": 0, "public": True}


def test_search_several_queries_and_max_results(
    client: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    page = client.vector_stores.search(
        library[0], query=["sourdough starter", "active volcanoes"], max_num_results=2
    )
    assert {r.filename for r in page.data} == {"baking.html", "volcanoes.txt"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "eq", "key": "topic", "value": "baking"}, {"baking.html"}),
        ({"type": "ne", "key": "topic", "value": "baking"}, {"rivers.md", "volcanoes.txt"}),
        ({"type": "gte", "key": "rank", "value": 1}, {"volcanoes.txt", "baking.html"}),
        ({"type": "in", "key": "topic", "value": ["rivers", "baking"]},
         {"rivers.md", "baking.html"}),
        ({"type": "and", "filters": [{"type": "eq", "key": "public", "value": True},
                                     {"type": "lt", "key": "rank", "value": 2}]},
         {"rivers.md"}),
        ({"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "rivers"},
                                    {"type": "eq", "key": "public", "value": False}]},
         {"rivers.md", "volcanoes.txt"}),
    ],
)  # fmt: skip
def test_search_filters(
    client: openai.OpenAI,
    library: tuple[str, dict[str, str]],
    filters: dict[str, object],
    expected: set[str],
) -> None:
    page = client.vector_stores.search(
        library[0],
        query="Danube volcanoes sourdough",
        filters=filters,  # type: ignore[arg-type]
    )
    assert {r.filename for r in page.data} == expected


def test_ranking_options(client: openai.OpenAI, library: tuple[str, dict[str, str]]) -> None:
    for weights in ({"embedding_weight": 1, "text_weight": 0},
                    {"embedding_weight": 0, "text_weight": 1}):  # fmt: skip
        page = client.vector_stores.search(
            library[0], query="Vienna Danube", rewrite_query=True,
            extra_body={"ranking_options": {"hybrid_search": weights}},
        )  # fmt: skip
        assert page.data[0].filename == "rivers.md"
    strict = client.vector_stores.search(
        library[0], query="Vienna Danube", ranking_options={"score_threshold": 0.99}
    )
    assert all(r.score >= 0.99 for r in strict.data)


@pytest.mark.parametrize(
    ("filters", "param"),
    [
        ({"type": "like", "key": "a", "value": 1}, "filters.type"),
        ({"type": "eq", "value": 1}, "filters.key"),
        ({"type": "eq", "key": "a", "value": {"x": 1}}, "filters.value"),
        ({"type": "and", "filters": [{"type": "in", "key": "a", "value": 3}]},
         "filters.filters[0].value"),
        ({"type": "or", "filters": []}, "filters.filters"),
    ],
)  # fmt: skip
def test_filters_of_the_wrong_shape_are_a_400_naming_the_field(
    client: openai.OpenAI, library: tuple[str, dict[str, str]], filters: object, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.search(library[0], query="x", filters=filters)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_update_list_and_delete_a_store(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="temp", expires_after={"anchor": "last_active_at",
                                                                     "days": 2})  # fmt: skip
    assert store.expires_at == store.last_active_at + 2 * 86400  # type: ignore[operator]
    updated = client.vector_stores.update(store.id, name="renamed", metadata={"a": "b"})
    assert (updated.name, updated.metadata) == ("renamed", {"a": "b"})
    assert store.id in [s.id for s in client.vector_stores.list(limit=100)]
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_file_batches(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="batched")
    ids = [_upload(client, f"b{n}.txt", f"batch document number {n}".encode()) for n in range(3)]
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id, file_ids=ids, attributes={"batch": True}, poll_interval_ms=100
    )
    assert batch.status == "completed"
    assert batch.file_counts.completed == 3
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert {f.id for f in files.data} == set(ids)
    assert all(f.attributes == {"batch": True} for f in files.data)
    again = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert again.file_counts.completed == 3


def test_attributes_update_and_file_delete(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="attrs")
    file_id = _upload(client, "a.txt", b"kumquat orchards of the south")
    client.vector_stores.files.create_and_poll(file_id=file_id, vector_store_id=store.id,
                                               poll_interval_ms=100)  # fmt: skip
    updated = client.vector_stores.files.update(
        file_id, vector_store_id=store.id, attributes={"colour": "orange"}
    )
    assert updated.attributes == {"colour": "orange"}
    assert client.vector_stores.files.delete(file_id, vector_store_id=store.id).deleted
    assert client.vector_stores.search(store.id, query="kumquat orchards").data == []
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_a_deleted_file_disappears_from_search_at_once(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="deleting")
    file_id = _upload(client, "gone.txt", b"the quokka lives on Rottnest Island")
    client.vector_stores.files.create_and_poll(file_id=file_id, vector_store_id=store.id,
                                               poll_interval_ms=100)  # fmt: skip
    assert client.vector_stores.search(store.id, query="quokka").data
    client.files.delete(file_id)
    assert client.vector_stores.search(store.id, query="quokka").data == []
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


@pytest.mark.parametrize(
    ("name", "data"),
    [("empty.txt", b""), ("blob.bin", bytes(range(256)) * 40), ("broken.pdf", b"%PDF-1.7 nope")],
)
def test_a_file_that_cannot_be_read_fails_and_the_store_stays_usable(
    client: openai.OpenAI, name: str, data: bytes
) -> None:
    store = client.vector_stores.create(name="mixed")
    good = _upload(client, "good.txt", b"the narwhal has a long tusk")
    bad = _upload(client, name, data)
    client.vector_stores.files.create(file_id=good, vector_store_id=store.id)
    client.vector_stores.files.create(file_id=bad, vector_store_id=store.id)
    assert wait_done(client, store.id, bad) == "failed"
    assert wait_done(client, store.id, good) == "completed"
    failed = client.vector_stores.files.retrieve(bad, vector_store_id=store.id)
    assert failed.last_error is not None
    assert failed.last_error.code in ("invalid_file", "unsupported_file")
    assert failed.last_error.message
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.completed, counts.failed) == (1, 1)
    found = client.vector_stores.search(store.id, query="narwhal tusk")
    assert [r.file_id for r in found.data] == [good]


def test_unknown_and_other_tenants_ids_are_404(
    client: openai.OpenAI, other_client: openai.OpenAI, library: tuple[str, dict[str, str]]
) -> None:
    store_id, files = library
    file_id = files["rivers.md"]
    calls: list[Callable[[openai.OpenAI], object]] = [
        lambda c: c.vector_stores.retrieve(store_id),
        lambda c: c.vector_stores.search(store_id, query="x"),
        lambda c: c.vector_stores.files.list(store_id),
        lambda c: c.vector_stores.files.retrieve(file_id, vector_store_id=store_id),
        lambda c: c.vector_stores.files.create(file_id=file_id, vector_store_id=store_id),
        lambda c: c.vector_stores.delete(store_id),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call(other_client)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve("vs_unknown")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(file_id="file_unknown", vector_store_id=store_id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_unknown", vector_store_id=store_id)
    # another tenant's file cannot be put in one's own store either
    theirs = other_client.vector_stores.create(name="theirs")
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.files.create(file_id=file_id, vector_store_id=theirs.id)
