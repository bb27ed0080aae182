"""The Responses API: turns on conversations or response chains, streamed or not."""
