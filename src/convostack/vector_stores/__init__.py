"""Vector stores: files chunked, embedded and indexed for hybrid search."""
