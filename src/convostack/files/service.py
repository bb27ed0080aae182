"""The Files service: a file's bytes and its description, for one principal.

Where the bytes live: in the database, a row per file (a BLOB on SQLite, a bytea on
PostgreSQL), not files under the data folder. With PostgreSQL replicas every replica must
read every file, and a database row is readable by all of them with no shared disk to
set up; a file is deleted, listed and backed up with everything else, in the same
transaction as taking it out of its vector stores.
Measured on this machine (bench/file_storage.py, medians, SQLite in WAL mode with
synchronous=NORMAL as the store runs it, against a file written, fsynced and renamed):
storing 10 kB takes 0.07 ms as a row and 1.9 ms as a file; 1 MiB 1.8 ms against 3.3 ms;
8 MiB 60 ms against 31 ms. Reading back: 0.17 ms against 0.10 ms for 1 MiB, 13 ms
against 5.5 ms for 8 MiB. Rows win for the documents retrieval is fed (kilobytes to a
few megabytes) and lose by 2x only for big files, which are read once, when ingested.
Uploads are bounded (setting max_file_bytes) so a row never grows past what one request
may hold in memory anyway.
"""

from __future__ import annotations

import time
from typing import Any

from convostack.errors import InvalidRequestError, NotFoundError, invalid_value
from convostack.ids import new_id
from convostack.storage.base import CursorMissing, Order, Store
from convostack.storage.files_base import FileData, FileMissing, FileRow, FilesFull

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# expires_after.seconds, as OpenAI bounds it: an hour to 30 days.
EXPIRY_SECONDS = (3600, 30 * 24 * 3600)


def file_not_found(file_id: str) -> NotFoundError:
    return NotFoundError(f"No such File object: {file_id}", param="file_id")


def file_object(row: FileRow) -> dict[str, Any]:
    return {
        "id": row.id, "object": "file", "bytes": row.bytes, "created_at": row.created_at,
        "filename": row.filename, "purpose": row.purpose, "status": "processed",
        "expires_at": row.expires_at, "status_details": None,
    }  # fmt: skip


def check_purpose(purpose: str | None) -> str:
    if not purpose:
        raise InvalidRequestError(
            "Missing required parameter: 'purpose'.",
            code="missing_required_parameter",
            param="purpose",
        )
    if purpose not in PURPOSES:
        raise invalid_value(
            "purpose",
            f"Invalid value: '{purpose[:64]}'. Supported values are: "
            f"{', '.join(repr(p) for p in PURPOSES)}.",
        )
    return purpose


def expires_at(anchor: str | None, seconds: str | None, now: int) -> int | None:
    """`expires_after[anchor]` and `expires_after[seconds]`, as multipart fields."""
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise invalid_value(
            "expires_after.anchor", "Invalid 'expires_after.anchor': expected 'created_at'."
        )
    low, high = EXPIRY_SECONDS
    if seconds is None or not seconds.isdigit() or not low <= int(seconds) <= high:
        raise invalid_value(
            "expires_after.seconds",
            f"Invalid 'expires_after.seconds': expected an integer between {low} and {high}.",
        )
    return now + int(seconds)


class FileService:
    def __init__(self, store: Store, max_bytes_per_principal: int | None = None):
        self._store = store
        self._quota = max_bytes_per_principal

    async def create(
        self,
        owner: str,
        *,
        filename: str,
        content_type: str | None,
        data: bytes,
        purpose: str,
        expires: tuple[str | None, str | None],
    ) -> dict[str, Any]:
        now = int(time.time())
        row = FileRow(
            new_id("file"), now, filename, check_purpose(purpose), len(data),
            expires_at(*expires, now), content_type,
        )  # fmt: skip
        try:
            await self._store.create_file(owner, row, data, max_total=self._quota)
        except FilesFull as exc:
            raise InvalidRequestError(
                f"Quota exceeded: this principal's files hold {exc.held} bytes; adding "
                f"{len(data)} would pass its quota of {self._quota} (setting "
                "max_file_bytes_per_principal). Delete some files, or ask the server's "
                "operator for a larger quota.",
                code="quota_exceeded", param="file",
            ) from None  # fmt: skip
        return file_object(row)

    async def list_files(
        self, owner: str, *, after: str | None, limit: int, order: Order, purpose: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        try:
            rows, more = await self._store.list_files(
                owner, after=after, limit=limit, order=order, purpose=purpose
            )
        except CursorMissing:
            raise invalid_value("after", f"No file with id '{after}' to list after.") from None
        return [file_object(r) for r in rows], more

    async def retrieve(self, owner: str, file_id: str) -> dict[str, Any]:
        try:
            return file_object(await self._store.get_file(owner, file_id))
        except FileMissing:
            raise file_not_found(file_id) from None

    async def content(self, owner: str, file_id: str) -> FileData:
        try:
            return await self._store.file_data(owner, file_id)
        except FileMissing:
            raise file_not_found(file_id) from None

    async def delete(self, owner: str, file_id: str) -> dict[str, Any]:
        try:
            await self._store.delete_file(owner, file_id)
        except FileMissing:
            raise file_not_found(file_id) from None
        return {"id": file_id, "object": "file", "deleted": True}
