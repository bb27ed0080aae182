"""The Files API through the stock openai client: upload, list, retrieve, content,
delete; limits and tenants."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest
from tests.integration.vector_stores.conftest import KEY_A, SETTINGS


def test_upload_retrieve_content_delete(client: openai.OpenAI) -> None:
    created = client.files.create(file=("notes.txt", b"hello files\n"), purpose="assistants")
    assert created.object == "file"
    assert created.filename == "notes.txt"
    assert created.bytes == len(b"hello files\n")
    assert created.purpose == "assistants"
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == b"hello files\n"
    deleted = client.files.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_list_pages_and_purpose_filter(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"f{n}.txt", b"x"), purpose="user_data").id for n in range(3)]
    client.files.create(file=("batch.jsonl", b"{}"), purpose="batch")
    page = client.files.list(purpose="user_data", limit=2, order="asc")
    seen = [f.id for f in page.data]
    assert len(seen) == 2
    assert page.has_more
    rest = client.files.list(purpose="user_data", limit=100, order="asc", after=seen[-1])
    listed = seen + [f.id for f in rest.data]
    assert listed[-3:] == ids
    assert all(f.purpose == "user_data" for f in rest.data)


def test_expires_after_sets_expires_at(client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("e.txt", b"soon"), purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )  # fmt: skip
    assert created.expires_at == created.created_at + 3600


def test_a_file_over_the_limit_is_a_413(client: openai.OpenAI) -> None:
    huge = b"a" * (int(str(SETTINGS["max_file_bytes"])) + 1)
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("huge.txt", huge), purpose="assistants")
    assert caught.value.status_code == 413
    assert "max_file_bytes" in caught.value.message


def test_a_bad_purpose_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.txt", b"a"), purpose="nonsense")  # type: ignore[arg-type]
    assert caught.value.param == "purpose"


def test_another_tenants_file_is_not_found(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    mine = client.files.create(file=("mine.txt", b"secret"), purpose="assistants")
    for call in (other_client.files.retrieve, other_client.files.content,
                 other_client.files.delete):  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            call(mine.id)
    assert mine.id not in [f.id for f in other_client.files.list()]
    assert client.files.retrieve(mine.id).id == mine.id


def test_a_chunked_upload_over_the_limit_is_a_413(
    http: httpx2.Client,
) -> None:
    """No Content-Length to refuse by: the bounded read stops it."""
    limit = int(str(SETTINGS["max_file_bytes"]))
    boundary = "b0undary"

    def body() -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
               f'assistants\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
               'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n').encode()  # fmt: skip
        for _ in range(limit // 65536 + 3):
            yield b"a" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = http.post(
        "/v1/files", content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}",
                 "authorization": f"Bearer {KEY_A}"},
    )  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "file"


def test_a_principals_files_are_bounded_by_its_quota(other_client: openai.OpenAI) -> None:
    """Tenant b (a quota of 500 kB, setting max_file_bytes_per_principal) holds nothing
    else in these tests."""
    chunk = b"q" * 190_000
    kept = [other_client.files.create(file=(f"q{n}.txt", chunk), purpose="assistants").id
            for n in range(2)]  # fmt: skip
    with pytest.raises(openai.BadRequestError) as caught:
        other_client.files.create(file=("q2.txt", chunk), purpose="assistants")
    assert caught.value.code == "quota_exceeded"
    assert "max_file_bytes_per_principal" in caught.value.message
    other_client.files.delete(kept[0])
    kept[0] = other_client.files.create(file=("q3.txt", chunk), purpose="assistants").id
    for file_id in kept:
        other_client.files.delete(file_id)
