-- How many items each conversation holds, deleted ones not counted: kept by every
-- statement that adds or deletes items, so the item limit is checked by the append
-- itself (in its UPDATE's WHERE, under the conversation's row lock) instead of by a
-- count that reads every item first.
ALTER TABLE conversations ADD COLUMN live_items bigint NOT NULL DEFAULT 0;

UPDATE conversations c SET live_items = n.live
FROM (
    SELECT conversation_id, count(*) AS live FROM items WHERE body IS NOT NULL
    GROUP BY conversation_id
) n
WHERE c.id = n.conversation_id;
