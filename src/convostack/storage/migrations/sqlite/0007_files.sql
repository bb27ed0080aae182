-- Files, vector stores and their chunks (files/, vector_stores/). A file's bytes are a
-- row (files/service.py says why, with the measurement). Every row is an owner's.
CREATE TABLE files (
    pos          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    owner        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    filename     TEXT    NOT NULL,
    purpose      TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    expires_at   INTEGER,
    content_type TEXT,
    data         BLOB    NOT NULL
);
CREATE INDEX files_owner_pos ON files (owner, pos);

-- generation grows whenever the store's chunks change, so a process's cached copy of
-- its vectors knows when it is stale.
CREATE TABLE vector_stores (
    pos             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    owner           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    metadata        BLOB    NOT NULL,
    expires_after   BLOB,
    last_active_at  INTEGER NOT NULL,
    embedding_model TEXT    NOT NULL,
    dimension       INTEGER NOT NULL,
    generation      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX vector_stores_owner_pos ON vector_stores (owner, pos);

-- A file in a store. A row `in_progress` is also the ingestion queue's entry: a process
-- takes it by setting lease_until, and a lease that ran out (its process died) is taken
-- again, so nothing stays in_progress across a restart.
CREATE TABLE vector_store_files (
    pos             INTEGER PRIMARY KEY AUTOINCREMENT,
    vector_store_id TEXT    NOT NULL,
    file_id         TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    last_error      BLOB,
    attributes      BLOB    NOT NULL,
    chunking        BLOB    NOT NULL,
    usage_bytes     INTEGER NOT NULL DEFAULT 0,
    batch_id        TEXT,
    lease_until     INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (vector_store_id, file_id)
);
CREATE INDEX vector_store_files_pending ON vector_store_files (status, lease_until);
CREATE INDEX vector_store_files_file ON vector_store_files (file_id);
CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id);

CREATE TABLE file_batches (
    id              TEXT    PRIMARY KEY,
    owner           TEXT    NOT NULL,
    vector_store_id TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL DEFAULT 0
);

-- vector: float32, little-endian, the store's dimension.
CREATE TABLE chunks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    vector_store_id TEXT    NOT NULL,
    file_id         TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    text            TEXT    NOT NULL,
    vector          BLOB    NOT NULL
);
CREATE INDEX chunks_store_file ON chunks (vector_store_id, file_id);

-- BM25 over the chunks' text: an external-content FTS5 table kept by triggers.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
