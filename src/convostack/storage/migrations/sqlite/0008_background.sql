-- Background responses: the responses table is their queue. A background row is
-- `queued` (request holds its sealed request body), then `in_progress` under a lease
-- (lease_until, renewed by its worker; attempts counts the claims), `completing` while
-- its turn is written, then a final status. events: 1 while its stream events are kept,
-- 2 once they were pruned (finished_at + retention).
ALTER TABLE responses ADD COLUMN request BLOB;
ALTER TABLE responses ADD COLUMN lease_until INTEGER;
ALTER TABLE responses ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN finished_at INTEGER;

CREATE INDEX responses_queue ON responses (status, pos)
    WHERE status IN ('queued', 'in_progress', 'completing');
CREATE INDEX responses_events_kept ON responses (finished_at) WHERE events = 1;

-- The stream events of a background response, numbered as sent (sequence_number).
CREATE TABLE response_events (
    response_id TEXT    NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    event       BLOB    NOT NULL,
    PRIMARY KEY (response_id, seq)
) WITHOUT ROWID;
