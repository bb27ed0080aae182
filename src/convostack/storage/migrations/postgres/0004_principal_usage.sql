-- What each owner stores, kept by stores opened with quotas (storage/quotas.py).
CREATE TABLE principal_usage (
    owner         text   NOT NULL PRIMARY KEY,
    conversations bigint NOT NULL DEFAULT 0,
    items         bigint NOT NULL DEFAULT 0,
    bytes         bigint NOT NULL DEFAULT 0
);
