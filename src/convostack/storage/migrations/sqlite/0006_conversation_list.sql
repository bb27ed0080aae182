-- GET /v1/conversations (an extension) lists an owner's conversations in creation order.
-- pos numbers each owner's conversations (max + 1 at insert: SQLite's single writer
-- makes that safe), so two created in the same second still have an order; existing
-- rows are numbered by created_at, then id.
ALTER TABLE conversations ADD COLUMN pos INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET pos = numbered.n
FROM (
    SELECT id, row_number() OVER (PARTITION BY owner ORDER BY created_at, id) AS n
    FROM conversations
) AS numbered
WHERE conversations.id = numbered.id;

CREATE INDEX conversations_owner_pos ON conversations (owner, pos);
