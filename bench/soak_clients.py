"""The soak's clients and the model each keeps of what its conversations must hold
(see soak.py, which runs them and checks the conversations afterwards)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

FAKE = "fake-model"
SLOW = "slow-model"  # served by a provider with a one-second timeout
KEYS = {
    "sk-soak-team-a-0000000000000001": "team-a",
    "sk-soak-team-a-0000000000000002": "team-a",
    "sk-soak-team-b-0000000000000001": "team-b",
    "sk-soak-team-b-0000000000000002": "team-b",
}
SHARED_PER_PRINCIPAL = 4
OWNED_PER_CLIENT = 3
MAX_OWNED = 8
REQUEST_TIMEOUT_S = 30

# (fault, model, streamed only, what the client sees)
FAULTS = [
    ("fail500", FAKE, False),
    ("fail400", FAKE, False),
    ("break", FAKE, False),
    ("error-chunk", FAKE, True),
    ("slow:3", SLOW, False),  # the provider gives up after one second
    ("drip:2", SLOW, True),  # silent for two seconds mid-stream
]
ECHO = re.compile(r"^echo: (.*) \[(\d+) messages\]$", re.S)


def text_matches(text: str, wanted: str) -> bool:
    # An echo is wanted by its prefix: its message count is checked when it comes back.
    return text.startswith(wanted) if wanted.endswith(" [") else text == wanted


# --- what each conversation must hold ---------------------------------------------------

COMMITTED, ABSENT, UNKNOWN = "committed", "absent", "unknown"


@dataclass
class Block:
    """What one write puts in a conversation: items appended together, in order."""

    kind: str  # "items" or "turn"
    texts: list[str]  # for a turn: [input]; its echo follows it
    status: str
    response_id: str | None = None

    def items(self) -> list[str]:
        """Its items' texts; a turn's echo by its prefix (the count is checked apart)."""
        if self.kind == "turn":
            return [self.texts[0], f"echo: {self.texts[0]} ["]
        return list(self.texts)


@dataclass
class Conversation:
    id: str
    principal: str
    shared: bool
    blocks: list[Block] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # texts of deleted items
    maybe_deleted: set[str] = field(default_factory=set)  # deletions without an answer
    gone: bool = False  # the conversation itself was deleted
    full: bool = False  # at the server's max_items_per_conversation: written no more
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def gone_item(self, wanted: str) -> str | None:
        """'deleted' or 'maybe' when the item with this text (or echo prefix) was deleted."""
        for deleted, answer in ((self.deleted, "deleted"), (self.maybe_deleted, "maybe")):
            if any(text_matches(text, wanted) for text in deleted):
                return answer
        return None

    def live_count(self) -> tuple[int, int]:
        """Items now there for sure, and items that may be there (unknown outcomes)."""
        sure = maybe = 0
        for block in self.blocks:
            for text in block.items():
                gone = self.gone_item(text)
                if block.status == COMMITTED and gone is None:
                    sure += 1
                elif block.status == UNKNOWN or gone == "maybe":
                    maybe += 1 if gone != "deleted" else 0
        return sure, maybe


@dataclass
class Tally:
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


# --- the clients --------------------------------------------------------------------------


class Client:
    def __init__(
        self,
        n: int,
        key: str,
        base: str,
        shared: list[Conversation],
        tally: Tally,
        rng: random.Random,
        fault_rate: float,
    ):
        self.n = n
        self.key = key
        self.principal = KEYS[key]
        self.base = base
        self.shared = shared
        self.owned: list[Conversation] = []
        self.tally = tally
        self.rng = rng
        self.fault_rate = fault_rate
        self.counter = 0
        self.headers = {"authorization": f"Bearer {key}"}
        self.foreign: list[str] = []  # ids of the other principal's objects, for probes
        self.last_error: str | None = None  # the code of the last error answer

    def token(self, what: str) -> str:
        self.counter += 1
        return f"c{self.n}-{what}-{self.counter}"

    def unique(self) -> str:
        """Digits no other client's turn has: unique fault texts (a drip or a wait of a
        few more microseconds), so that a kept turn can be told apart."""
        self.counter += 1
        return f"{self.n:03d}{self.counter:07d}"

    async def call(
        self, session: aiohttp.ClientSession, kind: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        self.tally.requests[kind] += 1
        async with session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as response:
            payload = await response.read()
        self.tally.statuses[str(response.status)] += 1
        self.last_error = _error_code(payload) if response.status >= 400 else None
        if response.status >= 500 and response.status not in (502, 503, 504):
            self.tally.problem(f"{method} {path}: HTTP {response.status} {payload[:200]!r}")
        if response.status >= 400:
            error = json.loads(payload).get("error") if payload else None
            if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
                self.tally.problem(f"{method} {path}: not an OpenAI error body: {payload[:200]!r}")
        return response.status, json.loads(payload) if payload else None

    async def run(self, session: aiohttp.ClientSession, deadline: float) -> None:
        for _ in range(OWNED_PER_CLIENT):
            await self.create(session)
        actions = [
            (self.turn, 45),
            (self.append, 15),
            (self.list_items, 12),
            (self.retrieve, 8),
            (self.chat, 6),
            (self.create, 4),
            (self.delete_item, 5),
            (self.probe, 3),
            (self.delete_conversation, 2),
        ]
        functions, weights = zip(*actions, strict=True)
        while time.monotonic() < deadline:
            action = self.rng.choices(functions, weights)[0]
            try:
                await asyncio.wait_for(action(session), REQUEST_TIMEOUT_S * 2)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.tally.outcomes[f"client error: {type(exc).__name__}"] += 1

    def pick(self, owned_only: bool = False) -> Conversation | None:
        live = [c for c in self.owned if not c.gone and not c.full]
        pool = live if owned_only else live + [c for c in self.shared if not c.full]
        return self.rng.choice(pool) if pool else None

    async def retire(self, session: aiohttp.ClientSession, conversation: Conversation) -> None:
        """A conversation at the server's item limit is written no more; a shared one is
        replaced, for every client of the principal (they share the list)."""
        if conversation.full:
            return
        conversation.full = True
        if conversation.shared:
            status, body = await self.call(
                session, "conversations.create", "POST", "/v1/conversations", {}
            )
            if status == 200:
                self.shared.append(Conversation(body["id"], self.principal, shared=True))

    async def create(self, session: aiohttp.ClientSession) -> None:
        if len([c for c in self.owned if not c.gone and not c.full]) >= MAX_OWNED:
            return
        text = self.token("init")
        status, body = await self.call(
            session,
            "conversations.create",
            "POST",
            "/v1/conversations",
            {"items": [{"role": "user", "content": text}], "metadata": {"client": str(self.n)}},
        )
        if status == 200:
            conversation = Conversation(body["id"], self.principal, shared=False)
            conversation.blocks.append(Block("items", [text], COMMITTED))
            self.owned.append(conversation)

    async def append(self, session: aiohttp.ClientSession) -> None:
        conversation = self.pick()
        if conversation is None:
            return
        texts = [self.token("item") for _ in range(self.rng.randint(1, 3))]
        async with _maybe(conversation):
            block = Block("items", texts, UNKNOWN)  # until the server answers
            conversation.blocks.append(block)
            status, _ = await self.call(
                session,
                "items.create",
                "POST",
                f"/v1/conversations/{conversation.id}/items",
                {"items": [{"role": "user", "content": t} for t in texts]},
            )
            block.status = COMMITTED if status == 200 else ABSENT
            if self.last_error == "conversation_too_long":
                await self.retire(session, conversation)

    async def turn(self, session: aiohttp.ClientSession) -> None:
        conversation = self.pick()
        if conversation is None:
            return
        stream = self.rng.random() < 0.5
        model, text, leave = FAKE, self.token("turn"), False
        roll = self.rng.random()
        if roll < self.fault_rate:
            fault, model, streamed = self.rng.choice(FAULTS)
            stream = stream or streamed
            text = fault
            self.tally.faults[fault] += 1
        elif roll < self.fault_rate * 1.25:
            # A client that leaves after the first words.
            stream, leave = True, True
            text = f"drip:0.2{self.unique()}"
            self.tally.faults["client leaves mid-stream"] += 1
        elif roll < self.fault_rate * 1.5:
            text = f"slow:0.3{self.unique()}"  # slow but healthy: turns overlap more
        async with _maybe(conversation):
            sure, maybe = conversation.live_count()
            block = Block("turn", [text], UNKNOWN)
            conversation.blocks.append(block)
            body = {
                "model": model,
                "input": text,
                "conversation": conversation.id,
                "stream": stream,
            }
            status, reply, response_id = await self._turn(session, body, leave)
            block.response_id = response_id
            block.status = status
            self.tally.outcomes[f"turn {status}"] += 1
            if status == COMMITTED:
                self._check_echo(conversation, text, reply, sure, maybe)
            elif self.last_error == "conversation_too_long":
                await self.retire(session, conversation)
            elif text.startswith(("drip:0.2", "slow:0.3")) and not leave:
                self.tally.problem(f"healthy turn {text!r} on {conversation.id} failed")
            if status == COMMITTED and text in dict.fromkeys(f[0] for f in FAULTS):
                self.tally.problem(f"fault turn {text!r} on {conversation.id} was kept")

    def _check_echo(
        self, conversation: Conversation, text: str, reply: str | None, sure: int, maybe: int
    ) -> None:
        match = ECHO.match(reply or "")
        if match is None or match.group(1) != text:
            self.tally.problem(f"turn {text!r} on {conversation.id}: reply {reply!r}")
            return
        seen = int(match.group(2))
        if not conversation.shared and not sure + 1 <= seen <= sure + maybe + 1:
            self.tally.problem(
                f"turn {text!r} on {conversation.id}: the model saw {seen} messages, "
                f"the conversation held {sure} (+{maybe} unknown) items"
            )

    async def _turn(
        self, session: aiohttp.ClientSession, body: Any, leave: bool
    ) -> tuple[str, str | None, str | None]:
        kind = "responses.create (stream)" if body["stream"] else "responses.create"
        if not body["stream"]:
            status, payload = await self.call(session, kind, "POST", "/v1/responses", body)
            if status != 200:
                return ABSENT, None, None
            return COMMITTED, output_text(payload), payload["id"]
        self.tally.requests[kind] += 1
        last: dict[str, Any] = {}
        async with session.post(
            self.base + "/v1/responses", json=body, headers=self.headers
        ) as response:
            self.tally.statuses[str(response.status)] += 1
            if response.status != 200:
                self.last_error = _error_code(await response.read())
                return ABSENT, None, None
            async for raw in response.content:
                line = raw.decode().strip()
                if leave and "response.output_text.delta" in line:
                    response.close()  # leave: the server must cancel and keep nothing
                    return UNKNOWN, None, None
                if line.startswith("data: "):
                    last = json.loads(line[6:])
        kind_of_end = last.get("type")
        if kind_of_end == "response.completed":
            return COMMITTED, output_text(last["response"]), last["response"]["id"]
        if kind_of_end == "response.failed":
            error = last["response"].get("error") or {}
            if not error.get("message"):
                self.tally.problem(f"response.failed without an error message: {last}")
            return ABSENT, None, last["response"]["id"]
        self.tally.problem(f"stream ended with {kind_of_end!r}")
        return UNKNOWN, None, None

    async def list_items(self, session: aiohttp.ClientSession) -> None:
        conversation = self.pick()
        if conversation is None:
            return
        limit = self.rng.choice([1, 5, 20, 100])
        status, body = await self.call(
            session,
            "items.list",
            "GET",
            f"/v1/conversations/{conversation.id}/items?limit={limit}&order=asc",
        )
        if status == 200:
            ids = [item["id"] for item in body["data"]]
            if len(set(ids)) != len(ids):
                self.tally.problem(f"a page of {conversation.id} repeats an item id")
        elif not (status == 404 and conversation.gone):
            self.tally.problem(f"listing {conversation.id}: HTTP {status}")

    async def retrieve(self, session: aiohttp.ClientSession) -> None:
        conversation = self.pick()
        if conversation is None:
            return
        turns = [b for b in conversation.blocks if b.response_id]
        if turns and self.rng.random() < 0.5:
            block = self.rng.choice(turns)
            status, _ = await self.call(
                session, "responses.retrieve", "GET", f"/v1/responses/{block.response_id}"
            )
            if status != 200:
                self.tally.problem(f"stored response {block.response_id}: HTTP {status}")
            return
        status, _ = await self.call(
            session, "conversations.retrieve", "GET", f"/v1/conversations/{conversation.id}"
        )
        if status != 200 and not conversation.gone:
            self.tally.problem(f"conversation {conversation.id}: HTTP {status}")

    async def chat(self, session: aiohttp.ClientSession) -> None:
        body = {"model": FAKE, "messages": [{"role": "user", "content": self.token("chat")}]}
        status, _ = await self.call(
            session, "chat.completions", "POST", "/v1/chat/completions", body
        )
        if status != 200:
            self.tally.problem(f"chat completion: HTTP {status}")

    async def delete_item(self, session: aiohttp.ClientSession) -> None:
        conversation = self.pick(owned_only=True)
        if conversation is None:
            return
        status, body = await self.call(
            session,
            "items.list",
            "GET",
            f"/v1/conversations/{conversation.id}/items?limit=5&order=desc",
        )
        if status != 200 or not body["data"]:
            return
        item = self.rng.choice(body["data"])
        text = item["content"][0]["text"]
        conversation.maybe_deleted.add(text)  # until the server answers
        status, _ = await self.call(
            session,
            "items.delete",
            "DELETE",
            f"/v1/conversations/{conversation.id}/items/{item['id']}",
        )
        conversation.maybe_deleted.discard(text)
        if status == 200:
            conversation.deleted.add(text)
        else:
            self.tally.problem(f"deleting an item of {conversation.id}: HTTP {status}")

    async def delete_conversation(self, session: aiohttp.ClientSession) -> None:
        live = [c for c in self.owned if not c.gone]
        if len(live) <= 1:
            return
        conversation = self.rng.choice(live)
        status, _ = await self.call(
            session, "conversations.delete", "DELETE", f"/v1/conversations/{conversation.id}"
        )
        if status == 200:
            conversation.gone = True
        else:
            self.tally.problem(f"deleting {conversation.id}: HTTP {status}")

    async def probe(self, session: aiohttp.ClientSession) -> None:
        """Another principal's conversation or response: it must answer as a missing one."""
        if not self.foreign:
            return
        target = self.rng.choice(self.foreign)
        path = (
            f"/v1/conversations/{target}"
            if target.startswith("conv_")
            else (f"/v1/responses/{target}")
        )
        status, _ = await self.call(session, "cross-tenant probes", "GET", path)
        if status != 404:
            self.tally.problem(f"{self.principal} read {target} of another principal: {status}")


def _error_code(payload: bytes) -> str | None:
    try:
        code = json.loads(payload)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def output_text(response: dict[str, Any]) -> str | None:
    for item in response.get("output") or ():
        for part in item.get("content") or ():
            if part.get("type") == "output_text":
                return str(part["text"])
    return None


@contextlib.asynccontextmanager
async def _maybe(conversation: Conversation) -> Any:
    """On a conversation with one writer, its writes are in the order of the model; on a
    shared one, overlapping writes are the point."""
    if conversation.shared:
        yield
        return
    async with conversation.lock:
        yield
