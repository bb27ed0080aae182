-- Conversations and their items.
-- Items are ordered by a per-conversation sequence number allocated from
-- conversations.next_seq (an UPDATE that row-locks the conversation), so order never
-- depends on clocks, and concurrent appends on one conversation are serialised.
CREATE TABLE conversations (
    id          text   NOT NULL PRIMARY KEY,
    owner       text   NOT NULL,
    created_at  bigint NOT NULL,
    metadata    bytea  NOT NULL,
    next_seq    bigint NOT NULL DEFAULT 0
);

-- body is the item's JSON exactly as the API returns it (bytea, not jsonb: routes splice
-- these bytes into pages unparsed, and jsonb would reorder keys and re-serialise, so we
-- would have to re-encode every item on every read). NULL marks an item deleted through
-- the Items API, kept as a tombstone so that an `after` cursor naming it still pages.
-- Deleting a conversation cascades to its items; the foreign key also makes that delete
-- wait for (and then remove) items appended by a concurrent, still-open transaction.
-- id is the caller's or ours, as UTF-8 bytes: callers may choose any id, and PostgreSQL
-- text cannot hold a NUL character.
CREATE TABLE items (
    conversation_id text   NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    id              bytea  NOT NULL,
    type            text   NOT NULL,
    created_at      bigint NOT NULL,
    body            bytea,
    PRIMARY KEY (conversation_id, seq)
);

CREATE UNIQUE INDEX items_conversation_id ON items (conversation_id, id);
CREATE INDEX items_id ON items (id);
