-- What each owner stores, kept by stores opened with quotas (storage/quotas.py).
CREATE TABLE principal_usage (
    owner         TEXT    NOT NULL PRIMARY KEY,
    conversations INTEGER NOT NULL DEFAULT 0,
    items         INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
