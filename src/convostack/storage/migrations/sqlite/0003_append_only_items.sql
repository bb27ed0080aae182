-- Appends write as few pages as they can (each page written costs a 4 KiB WAL frame):
-- * an item's sequence number is its conversation's highest seq plus one, read from
--   the primary key, so an append no longer rewrites the conversation's row (next_seq
--   stays as it was, unused);
-- * ids are looked up within a conversation through items_id, so the second index on
--   (conversation_id, id) goes; the store checks a caller's ids for duplicates itself;
-- * deleted_items counts the tombstones, so a conversation's size is known without
--   counting its items.
DROP INDEX items_conversation_id;

ALTER TABLE conversations ADD COLUMN deleted_items INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET deleted_items = (
    SELECT count(*) FROM items WHERE items.conversation_id = conversations.id AND body IS NULL
);
