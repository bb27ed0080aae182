-- Stored responses. body is the Response object's JSON as sent to the client;
-- input_items is the JSON array of this response's own input items, normalised.
-- pos orders the list endpoint; it only grows.
CREATE TABLE responses (
    pos                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   text   NOT NULL UNIQUE,
    owner                text   NOT NULL,
    created_at           bigint NOT NULL,
    model                text   NOT NULL,
    status               text   NOT NULL,
    conversation_id      text,
    previous_response_id text,
    body                 bytea  NOT NULL,
    input_items          bytea  NOT NULL
);

CREATE INDEX responses_owner_pos ON responses (owner, pos);
