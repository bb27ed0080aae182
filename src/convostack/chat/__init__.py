"""Chat Completions and Embeddings: passed through to the provider that serves the model."""
