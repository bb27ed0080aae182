"""`convostack chat`: a REPL on any convostack (or OpenAI-compatible Responses API)
through the stock `openai` client. Each line is a turn on one conversation, its answer
streamed as it is written; lines starting with `/` are commands (HELP lists them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

import openai

HELP = "/new: a new conversation · /history: its items · /model NAME · /quit"


class ChatSession:
    """The REPL's state (the client, model and conversation) and its commands; reading
    lines and writing text are given, so a test or another front end can drive it."""

    def __init__(
        self, client: openai.OpenAI, out: TextIO, model: str | None, conversation: str | None
    ):
        self.client = client
        self.out = out
        self.model = model or self._first_model()
        self.conversation = conversation or self._new_conversation()

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def _first_model(self) -> str:
        models = [m.id for m in self.client.models.list()]
        if not models:
            raise SystemExit("The server lists no models; give one with --model.")
        return models[0]

    def _new_conversation(self) -> str:
        return self.client.conversations.create(metadata={"source": "convostack chat"}).id

    def banner(self) -> None:
        self.say(f"conversation {self.conversation} · model {self.model}")
        self.say(HELP)

    def handle(self, line: str) -> bool:
        """Runs one line; False when the session is over."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            self.turn(line)
            return True
        command, _, argument = line.partition(" ")
        action: dict[str, Callable[[str], bool]] = {
            "/quit": lambda _: False,
            "/exit": lambda _: False,
            "/new": self._command_new,
            "/history": self._command_history,
            "/model": self._command_model,
            "/help": self._command_help,
        }
        found = action.get(command)
        if found is None:
            self.say(f"unknown command {command}; {HELP}")
            return True
        return found(argument.strip())

    def _command_new(self, _: str) -> bool:
        self.conversation = self._new_conversation()
        self.say(f"conversation {self.conversation}")
        return True

    def _command_history(self, _: str) -> bool:
        for item in self.client.conversations.items.list(self.conversation, order="asc"):
            self.say(describe(item.model_dump()))
        return True

    def _command_model(self, name: str) -> bool:
        if not name:
            self.say(f"model {self.model}; /model NAME changes it")
            return True
        self.client.models.retrieve(name)  # an unknown one fails here, not at the next turn
        self.model = name
        self.say(f"model {self.model}")
        return True

    def _command_help(self, _: str) -> bool:
        self.say(HELP)
        return True

    def turn(self, text: str) -> None:
        """One turn on the conversation, its text written as it streams in."""
        stream = self.client.responses.create(
            model=self.model, input=text, conversation=self.conversation, stream=True
        )
        for event in stream:
            if event.type == "response.output_text.delta":
                self.say(event.delta, end="")
            elif event.type == "response.output_item.done" and event.item.type != "message":
                self.say(describe(event.item.model_dump()))
            elif event.type in ("response.failed", "response.incomplete"):
                reason = event.response.error or event.response.incomplete_details
                self.say(f"\n[{event.response.status}: {reason}]", end="")
        self.say()


def describe(item: dict[str, Any]) -> str:
    """One item as one or a few lines: who said what, or what was called."""
    kind = item.get("type")
    if kind == "message":
        parts = item.get("content") or []
        text = " ".join(
            str(p.get("text") or p.get("refusal") or f"[{p.get('type')}]") for p in parts
        )
        return f"{item.get('role')}: {text}"
    if kind in ("function_call", "mcp_call"):
        return f"[{kind}] {item.get('name')}({item.get('arguments')})"
    if kind == "function_call_output":
        return f"[{kind}] {item.get('output')}"
    return f"[{kind}]"


def run(session: ChatSession, read: Callable[[str], str]) -> None:
    """The loop: read a line (EOF or Ctrl-C ends it), handle it; an API error is shown
    and the session goes on."""
    session.banner()
    while True:
        try:
            line = read("> ")
        except (EOFError, KeyboardInterrupt):
            session.say()
            return
        try:
            if not session.handle(line):
                return
        except openai.APIError as exc:
            session.say(f"error: {getattr(exc, 'message', exc)}")
