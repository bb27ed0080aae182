"""The Vector Stores service: stores, their files and batches, for one principal. Files
are queued for ingestion here and ingested off the request path (ingest.py); search is
search.py's."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from convostack.errors import InvalidRequestError, NotFoundError, invalid_value
from convostack.files.service import file_not_found
from convostack.ids import new_id
from convostack.metadata import check_metadata
from convostack.storage.base import CursorMissing, Order, Store
from convostack.storage.files_base import (
    BatchMissing,
    BatchRow,
    FileMissing,
    NewStoreFile,
    StoreFileMissing,
    StoreFileRow,
    VectorStoreMissing,
    VectorStoreRow,
)
from convostack.vector_stores.models import (
    BatchCreate,
    StoreFileCreate,
    VectorStoreCreate,
    VectorStoreUpdate,
    check_attributes,
    chunking,
)

T = TypeVar("T")
DAY = 86400
Obj = dict[str, Any]


def store_not_found(vector_store_id: str) -> NotFoundError:
    return NotFoundError(
        f"No vector store found with id '{vector_store_id}'.", param="vector_store_id"
    )


async def translate(call: Awaitable[T]) -> T:
    """Run a store call; its "missing" exceptions become 404s naming the id."""
    try:
        return await call
    except VectorStoreMissing as exc:
        raise store_not_found(exc.vector_store_id) from None
    except FileMissing as exc:
        raise file_not_found(exc.file_id) from None
    except StoreFileMissing as exc:
        raise NotFoundError(
            f"No file found with id '{exc.file_id}' in this vector store.", param="file_id"
        ) from None
    except BatchMissing as exc:
        raise NotFoundError(
            f"No file batch found with id '{exc.batch_id}'.", param="batch_id"
        ) from None
    except CursorMissing as exc:
        raise invalid_value("after", f"No object with id '{exc.args[0]}' to list after.") from None


def expires_at(row: VectorStoreRow) -> int | None:
    if row.expires_after is None:
        return None
    return row.last_active_at + int(row.expires_after["days"]) * DAY


def check_not_expired(row: VectorStoreRow, param: str) -> None:
    """An expired store cannot be searched (as at OpenAI: make a new one)."""
    end = expires_at(row)
    if end is not None and end < time.time():
        raise InvalidRequestError(
            f"The vector store '{row.id}' expired at {end} (its expires_after, "
            f"{row.expires_after}, counts from its last activity); create a new one.",
            code="vector_store_expired", param=param,
        )  # fmt: skip


def store_object(row: VectorStoreRow) -> Obj:
    counts = row.counts
    end = expires_at(row)
    expired = end is not None and end < time.time()
    status = "expired" if expired else "in_progress" if counts["in_progress"] else "completed"
    return {
        "id": row.id, "object": "vector_store", "created_at": row.created_at, "name": row.name,
        "usage_bytes": row.usage_bytes, "file_counts": {**counts, "total": sum(counts.values())},
        "status": status, "expires_after": row.expires_after, "expires_at": end,
        "last_active_at": row.last_active_at, "metadata": row.metadata,
    }  # fmt: skip


def store_file_object(row: StoreFileRow) -> Obj:
    return {
        "id": row.file_id, "object": "vector_store.file", "usage_bytes": row.usage_bytes,
        "created_at": row.created_at, "vector_store_id": row.vector_store_id,
        "status": row.status, "last_error": row.last_error,
        "chunking_strategy": row.chunking, "attributes": row.attributes,
    }  # fmt: skip


def batch_object(row: BatchRow) -> Obj:
    counts = row.counts
    if counts["in_progress"]:
        status = "in_progress"
    elif row.cancelled:
        status = "cancelled"
    else:
        status = "completed"
    return {
        "id": row.id, "object": "vector_store.files_batch", "created_at": row.created_at,
        "vector_store_id": row.vector_store_id, "status": status,
        "file_counts": {**counts, "total": sum(counts.values())},
    }  # fmt: skip


class VectorStoreService:
    def __init__(
        self, store: Store, embedding_model: Callable[[], tuple[str, int]], wake: Callable[[], None]
    ):
        self._store = store
        self._embedding_model = embedding_model  # (model, dimension) new stores record
        self._wake = wake  # tells this process's ingestion worker there is work

    # -- stores -----------------------------------------------------------------------
    async def create(self, owner: str, body: VectorStoreCreate) -> Obj:
        metadata = check_metadata(body.metadata)
        strategy = chunking(body.chunking_strategy)
        model, dimension = self._embedding_model()
        now = int(time.time())
        row = VectorStoreRow(
            new_id("vs"), now, body.name or "", metadata,
            body.expires_after.model_dump() if body.expires_after else None, now, model,
            dimension,
        )  # fmt: skip
        files = [NewStoreFile(file_id, {}, strategy) for file_id in dict.fromkeys(body.file_ids)]
        await translate(self._store.create_vector_store(owner, row, files, None))
        if files:
            self._wake()
        return await self.retrieve(owner, row.id)

    async def list_stores(
        self, owner: str, *, after: str | None, limit: int, order: Order
    ) -> tuple[list[Obj], bool]:
        rows, more = await translate(
            self._store.list_vector_stores(owner, after=after, limit=limit, order=order)
        )
        return [store_object(r) for r in rows], more

    async def retrieve(self, owner: str, vector_store_id: str) -> Obj:
        return store_object(await translate(self._store.get_vector_store(owner, vector_store_id)))

    async def update(self, owner: str, vector_store_id: str, body: VectorStoreUpdate) -> Obj:
        changes: dict[str, Any] = {"last_active_at": int(time.time())}
        if body.name is not None:
            changes["name"] = body.name
        if body.metadata is not None:
            changes["metadata"] = orjson.dumps(check_metadata(body.metadata))
        if "expires_after" in body.model_fields_set:
            expires = body.expires_after
            changes["expires_after"] = orjson.dumps(expires.model_dump()) if expires else None
        row = await translate(self._store.update_vector_store(owner, vector_store_id, changes))
        return store_object(row)

    async def delete(self, owner: str, vector_store_id: str) -> Obj:
        await translate(self._store.delete_vector_store(owner, vector_store_id))
        return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}

    # -- files ------------------------------------------------------------------------
    async def add_file(self, owner: str, vector_store_id: str, body: StoreFileCreate) -> Obj:
        new = NewStoreFile(
            body.file_id, check_attributes(body.attributes), chunking(body.chunking_strategy)
        )
        await translate(self._store.add_store_files(owner, vector_store_id, [new], None))
        self._wake()
        return await self.get_file(owner, vector_store_id, body.file_id)

    async def list_files(
        self,
        owner: str,
        vector_store_id: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        status: str | None,
        batch_id: str | None = None,
    ) -> tuple[list[Obj], bool]:
        rows, more = await translate(
            self._store.list_store_files(
                owner, vector_store_id, after=after, limit=limit, order=order, status=status,
                batch_id=batch_id,
            )
        )  # fmt: skip
        return [store_file_object(r) for r in rows], more

    async def get_file(self, owner: str, vector_store_id: str, file_id: str) -> Obj:
        row = await translate(self._store.get_store_file(owner, vector_store_id, file_id))
        return store_file_object(row)

    async def update_file(
        self, owner: str, vector_store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> Obj:
        row = await translate(
            self._store.update_store_file(
                owner, vector_store_id, file_id, check_attributes(attributes)
            )
        )
        return store_file_object(row)

    async def delete_file(self, owner: str, vector_store_id: str, file_id: str) -> Obj:
        await translate(self._store.delete_store_file(owner, vector_store_id, file_id))
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def file_content(self, owner: str, vector_store_id: str, file_id: str) -> list[Obj]:
        texts = await translate(self._store.store_file_chunks(owner, vector_store_id, file_id))
        return [{"type": "text", "text": text} for text in texts]

    # -- batches ----------------------------------------------------------------------
    async def create_batch(self, owner: str, vector_store_id: str, body: BatchCreate) -> Obj:
        if (body.file_ids is None) == (body.files is None):
            raise InvalidRequestError(
                "Give exactly one of 'file_ids' and 'files'.", code="invalid_value",
                param="file_ids",
            )  # fmt: skip
        attributes = check_attributes(body.attributes)
        strategy = chunking(body.chunking_strategy)
        if body.file_ids is not None:
            files = [NewStoreFile(f, attributes, strategy) for f in dict.fromkeys(body.file_ids)]
        else:
            files = [
                NewStoreFile(
                    f.file_id, check_attributes(f.attributes, f"files[{n}].attributes")
                    if f.attributes is not None else attributes,
                    chunking(f.chunking_strategy, f"files[{n}].chunking_strategy")
                    if f.chunking_strategy is not None else strategy,
                )
                for n, f in enumerate(body.files or [])
            ]  # fmt: skip
        if not files:
            raise invalid_value("file_ids", "Invalid 'file_ids': give at least one file.")
        batch_id = new_id("vsfb")
        await translate(self._store.add_store_files(owner, vector_store_id, files, batch_id))
        self._wake()
        return await self.get_batch(owner, vector_store_id, batch_id)

    async def get_batch(self, owner: str, vector_store_id: str, batch_id: str) -> Obj:
        return batch_object(
            await translate(self._store.get_batch(owner, vector_store_id, batch_id))
        )

    async def cancel_batch(self, owner: str, vector_store_id: str, batch_id: str) -> Obj:
        row = await translate(self._store.cancel_batch(owner, vector_store_id, batch_id))
        return batch_object(row)
