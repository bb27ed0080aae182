"""Retrieval: embedders, ranking, chunking and text extraction for vector stores."""
