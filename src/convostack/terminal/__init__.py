"""convostack for people at a terminal: a chat REPL on the API (chat.py), and the
conversations of a database to and from JSONL (archive.py)."""
