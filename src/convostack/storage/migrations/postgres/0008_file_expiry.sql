-- The expiry sweep finds expired files by this index, not by reading the table (whose
-- rows hold the files' bytes).
CREATE INDEX files_expiry ON files (expires_at) WHERE expires_at IS NOT NULL;
