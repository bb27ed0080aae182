"""Object ids: a type prefix, an underscore, 48 hex characters, like OpenAI's: the first 8
the creation time in seconds, the other 40 random (160 bits).

The time first puts new ids at the end of the database's index on ids, so a batch of
appends writes one index page rather than a random page each (see
storage/migrations/sqlite/0003_append_only_items.sql). Nothing orders by ids.
"""

from __future__ import annotations

import secrets
import time

from convostack.errors import invalid_value

# The prefix of each stored item type's id; the wire reference, section 2.1.
ITEM_ID_PREFIXES: dict[str, str] = {
    "message": "msg",
    "reasoning": "rs",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "web_search_call": "ws",
    "file_search_call": "fs",
    "image_generation_call": "ig",
    "code_interpreter_call": "ci",
    "computer_call": "cu",
    "computer_call_output": "cuo",
    "local_shell_call": "lsh",
    "local_shell_call_output": "lsho",
    "shell_call": "sh",
    "shell_call_output": "sho",
    "apply_patch_call": "apc",
    "apply_patch_call_output": "apco",
    "mcp_call": "mcp",
    "mcp_list_tools": "mcpl",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
    "compaction": "cmp",
    "tool_search_call": "tsc",
    "tool_search_output": "tso",
    "additional_tools": "at",
    "configuration_update": "cfg",
    "program": "prg",
    "program_output": "prgo",
    "compaction_trigger": "cmpt",
}

# Ids a caller may put in a URL or a body: generous, but bounded.
MAX_ID_LENGTH = 256


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time()):08x}{secrets.token_hex(20)}"


def new_conversation_id() -> str:
    return new_id("conv")


def new_item_id(item_type: str) -> str:
    return new_id(ITEM_ID_PREFIXES[item_type])


def check_id(value: str, prefix: str, param: str) -> str:
    """Reject an id that cannot be one of ours: wrong prefix or absurd length."""
    if not value.startswith(prefix + "_") or len(value) > MAX_ID_LENGTH:
        raise invalid_value(
            param,
            f"Invalid '{param}': '{value[:MAX_ID_LENGTH]}'. Expected an ID that begins with "
            f"'{prefix}'.",
        )
    return value
