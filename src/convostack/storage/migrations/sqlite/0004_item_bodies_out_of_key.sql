-- Item bodies leave the key b-tree (issue 12). In a WITHOUT ROWID table a row is stored
-- in the primary key's b-tree, and SQLite compares a key against a cell whose payload
-- overflows its page by reading the whole payload: a GET of a tiny item stored next to
-- a 20 MB one read those 20 MB on every lookup (8 ms against 0.01). In a rowid table the
-- rows are found by their integer rowid, and a lookup only reads the body it returns;
-- the (conversation_id, seq) order moves to an index that holds no body.
CREATE TABLE items_by_rowid (
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    body            BLOB
);

INSERT INTO items_by_rowid (conversation_id, seq, id, type, created_at, body)
SELECT conversation_id, seq, id, type, created_at, body FROM items
ORDER BY conversation_id, seq;

DROP TABLE items;

ALTER TABLE items_by_rowid RENAME TO items;

CREATE UNIQUE INDEX items_seq ON items (conversation_id, seq);
CREATE INDEX items_id ON items (id);
