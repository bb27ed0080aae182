"""The Conversations API: conversations and their ordered items."""
