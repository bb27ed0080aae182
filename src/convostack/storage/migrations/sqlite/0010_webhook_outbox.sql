-- The webhooks of background responses wait here until every endpoint took them. The
-- database writes the row itself, in the transaction that ends the response (whichever
-- statement does it: a turn's write, a cancel, a failure), so an event is never lost
-- between the end and its delivery. A background row is one that was queued (request)
-- or claimed (attempts); next_at is when a process may take the row: 0 at once, then a
-- lease while one delivers it, then the time of the next try.
CREATE TABLE webhook_outbox (
    pos         INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    next_at     INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    delivered   BLOB    NOT NULL DEFAULT '[]'
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);

CREATE TRIGGER responses_webhook AFTER UPDATE OF status ON responses
WHEN OLD.status IN ('queued', 'in_progress', 'completing')
    AND NEW.status IN ('completed', 'incomplete', 'failed', 'cancelled')
    AND (OLD.request IS NOT NULL OR OLD.attempts > 0)
BEGIN
    INSERT INTO webhook_outbox (response_id, type, created_at)
    VALUES (NEW.id, 'response.' || NEW.status, CAST(strftime('%s', 'now') AS INTEGER));
END;
