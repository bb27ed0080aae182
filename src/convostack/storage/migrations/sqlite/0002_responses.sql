-- Stored responses. body is the Response object's JSON as sent to the client;
-- input_items is the JSON array of this response's own input items, normalised.
-- pos orders the list endpoint; it only grows.
CREATE TABLE responses (
    pos                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT    NOT NULL UNIQUE,
    owner                TEXT    NOT NULL,
    created_at           INTEGER NOT NULL,
    model                TEXT    NOT NULL,
    status               TEXT    NOT NULL,
    conversation_id      TEXT,
    previous_response_id TEXT,
    body                 BLOB    NOT NULL,
    input_items          BLOB    NOT NULL
);

CREATE INDEX responses_owner_pos ON responses (owner, pos);
