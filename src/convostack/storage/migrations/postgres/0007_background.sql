-- Background responses: the responses table is their queue. A background row is
-- `queued` (request holds its sealed request body), then `in_progress` under a lease
-- (lease_until, renewed by its worker; attempts counts the claims), `completing` while
-- its turn is written, then a final status. events: 1 while its stream events are kept,
-- 2 once they were pruned (finished_at + retention).
ALTER TABLE responses ADD COLUMN request bytea;
ALTER TABLE responses ADD COLUMN lease_until bigint;
ALTER TABLE responses ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN events smallint NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN finished_at bigint;

CREATE INDEX responses_queue ON responses (status, pos)
    WHERE status IN ('queued', 'in_progress', 'completing');
CREATE INDEX responses_events_kept ON responses (finished_at) WHERE events = 1;

-- The stream events of a background response, numbered as sent (sequence_number).
CREATE TABLE response_events (
    response_id text   NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    event       bytea  NOT NULL,
    PRIMARY KEY (response_id, seq)
);
