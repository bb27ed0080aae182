-- Files, vector stores and their chunks (files/, vector_stores/). A file's bytes are a
-- row, so every replica reads every file (files/service.py says why, with the
-- measurement). Every row is an owner's.
CREATE TABLE files (
    pos          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text   NOT NULL UNIQUE,
    owner        text   NOT NULL,
    created_at   bigint NOT NULL,
    filename     text   NOT NULL,
    purpose      text   NOT NULL,
    bytes        bigint NOT NULL,
    expires_at   bigint,
    content_type text,
    data         bytea  NOT NULL
);
CREATE INDEX files_owner_pos ON files (owner, pos);

-- generation grows whenever the store's chunks change, so a replica's cached copy of
-- its vectors knows when it is stale.
CREATE TABLE vector_stores (
    pos             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text   NOT NULL UNIQUE,
    owner           text   NOT NULL,
    created_at      bigint NOT NULL,
    name            text   NOT NULL,
    metadata        bytea  NOT NULL,
    expires_after   bytea,
    last_active_at  bigint NOT NULL,
    embedding_model text   NOT NULL,
    dimension       int    NOT NULL,
    generation      bigint NOT NULL DEFAULT 0
);
CREATE INDEX vector_stores_owner_pos ON vector_stores (owner, pos);

-- A file in a store. A row `in_progress` is also the ingestion queue's entry: a replica
-- takes it (FOR UPDATE SKIP LOCKED) by setting lease_until, and a lease that ran out
-- (its replica died) is taken again, so nothing stays in_progress across a restart.
CREATE TABLE vector_store_files (
    pos             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vector_store_id text   NOT NULL,
    file_id         text   NOT NULL,
    owner           text   NOT NULL,
    created_at      bigint NOT NULL,
    status          text   NOT NULL,
    last_error      bytea,
    attributes      bytea  NOT NULL,
    chunking        bytea  NOT NULL,
    usage_bytes     bigint NOT NULL DEFAULT 0,
    batch_id        text,
    lease_until     bigint,
    attempts        int    NOT NULL DEFAULT 0,
    UNIQUE (vector_store_id, file_id)
);
CREATE INDEX vector_store_files_pending ON vector_store_files (status, lease_until);
CREATE INDEX vector_store_files_file ON vector_store_files (file_id);
CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id);

CREATE TABLE file_batches (
    id              text    PRIMARY KEY,
    owner           text    NOT NULL,
    vector_store_id text    NOT NULL,
    created_at      bigint  NOT NULL,
    cancelled       boolean NOT NULL DEFAULT false
);

-- vector: float32, little-endian, the store's dimension. tsv: English full text, for
-- the keyword half of hybrid search.
CREATE TABLE chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vector_store_id text   NOT NULL,
    file_id         text   NOT NULL,
    seq             int    NOT NULL,
    text            text   NOT NULL,
    vector          bytea  NOT NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX chunks_store_file ON chunks (vector_store_id, file_id);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
