-- Conversations and their items.
-- Items are ordered by a per-conversation sequence number allocated from
-- conversations.next_seq, so order never depends on clocks.
CREATE TABLE conversations (
    id          TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    metadata    TEXT    NOT NULL,
    next_seq    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- body is the stored item's JSON; NULL marks an item deleted through the Items API,
-- kept as a tombstone so that an `after` cursor naming it still pages correctly.
CREATE TABLE items (
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    body            BLOB,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX items_conversation_id ON items (conversation_id, id);
CREATE INDEX items_id ON items (id);
