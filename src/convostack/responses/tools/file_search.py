"""`file_search` tools: the model gets one `file_search` function (a `query`, or several
`queries`); the server searches the named vector stores (vector_stores/search.py, the
same hybrid search as `POST /v1/vector_stores/{id}/search`) and gives the model the
retrieved text with the file names, as the result of a `file_search_call` item.

The item shows its `results` only with `include=["file_search_call.results"]`, as
OpenAI's does; the text the model read is kept beside it for the rest of the turn. The
final answer gets a `file_citation` annotation for each file it names (at that place),
or else for each file the searches used (at the end of the text).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from convostack.errors import APIError, InvalidRequestError
from convostack.providers.base import JSONDict
from convostack.responses.context import search_text
from convostack.responses.models import _Strict
from convostack.responses.output import CallShape
from convostack.responses.tools.base import OpeningItem, PrepareContext, TurnTools
from convostack.responses.tools.function import validated
from convostack.responses.tools.settings import ToolSettings
from convostack.vector_stores.filters import check_filter
from convostack.vector_stores.models import RankingOptions
from convostack.vector_stores.search import Searcher

FUNCTION_NAME = "file_search"
INCLUDE = "file_search_call.results"
DEFAULT_RESULTS = 10
# One required string: small local models fill a simple schema reliably, and a model
# that wants several searches calls the function several times (or sends `queries`,
# which is accepted too).
_PARAMETERS = {
    "type": "object",
    # A bound on the query: a small model under a grammar can otherwise write one for ever.
    "properties": {
        "query": {"type": "string", "maxLength": 200, "description": "What to look for."}
    },
    "required": ["query"],
}


class FileSearchSpec(_Strict):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=2)
    max_num_results: int | None = Field(None, ge=1, le=50)
    filters: Any = None
    ranking_options: RankingOptions | None = None


def _shape(runner: TurnTools) -> CallShape:
    item: JSONDict = {
        "type": "file_search_call",
        "name": FUNCTION_NAME,
        "status": "in_progress",
        "queries": [],
        "results": None,
    }  # name and arguments go once it runs
    return CallShape(
        item,
        None,
        started_event="response.file_search_call.in_progress",
        running_event="response.file_search_call.searching",
        completed_event="response.file_search_call.completed",
        runs_on_server=True,
        runner=runner,
        private=("name", "arguments"),
    )


def _queries(arguments: str) -> list[str]:
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(parsed, dict):
        return []
    found = parsed.get("queries")
    asked = [q for q in found if isinstance(q, str)] if isinstance(found, list) else []
    if isinstance(parsed.get("query"), str):
        asked.insert(0, parsed["query"])
    return [q for q in asked if q.strip()][:10]


class FileSearchTools:
    def __init__(self, spec: FileSearchSpec, context: PrepareContext, searcher: Searcher):
        self._spec = spec
        self._owner = context.owner
        self._searcher = searcher
        self._include = INCLUDE in context.include
        self._texts: dict[str, str] = {}
        self._used: dict[str, str] = {}  # file id -> name, in the order first retrieved

    def chat_tools(self) -> list[JSONDict]:
        return [{"type": "function", "function": {
            "name": FUNCTION_NAME, "parameters": _PARAMETERS,
            "description": "Search the user's uploaded files; answer from what it returns "
                           "and name the files you used.",
        }}]  # fmt: skip

    def chat_tool_choice(self) -> Any:
        return None

    def opening_items(self) -> list[OpeningItem]:
        return []

    def shape_of(self, name: str) -> CallShape | None:
        return _shape(self) if name == FUNCTION_NAME else None

    def unknown_call_shape(self, name: str) -> CallShape | None:
        return None

    def breaker_key(self, item: JSONDict) -> str:
        return "file_search"

    def model_texts(self) -> dict[str, str]:
        return self._texts

    async def run(self, item: JSONDict) -> bool:
        queries = _queries(item.pop("arguments", ""))
        item.pop("name", None)
        item["queries"] = queries
        if not queries:
            return self._fail(item, "The file_search call gave no query.")
        spec = self._spec
        limit = spec.max_num_results or DEFAULT_RESULTS
        found: list[JSONDict] = []
        try:
            for vector_store_id in spec.vector_store_ids:
                found += await self._searcher.search(
                    self._owner, vector_store_id, queries, max_results=limit,
                    filters=spec.filters, ranking=spec.ranking_options,
                )  # fmt: skip
        except APIError as exc:
            return self._fail(item, exc.message)
        found.sort(key=lambda r: -r["score"])
        results = [
            {"file_id": r["file_id"], "filename": r["filename"], "score": r["score"],
             "attributes": r["attributes"], "text": r["content"][0]["text"]}
            for r in found[:limit]
        ]  # fmt: skip
        for result in results:
            self._used.setdefault(result["file_id"], result["filename"])
        self._texts[item["id"]] = search_text(results)
        item.update(status="completed", results=results if self._include else None)
        return True

    def _fail(self, item: JSONDict, message: str) -> bool:
        self._texts[item["id"]] = f"The search failed: {message}"
        item.update(status="failed", results=None)
        return False

    def refuse(self, item: JSONDict, message: str) -> None:
        item.pop("arguments", None)
        item.pop("name", None)
        self._fail(item, message)

    def citations(self, text: str) -> list[JSONDict]:
        """A file_citation for each file retrieved in this turn: where the answer names it,
        else at the end of the text (the model read it, even if it does not say so)."""
        cited = []
        for file_id, filename in self._used.items():
            at = text.find(filename)
            cited.append((len(text) if at < 0 else at + len(filename), file_id, filename))
        named = [c for c in cited if c[0] < len(text) or text.endswith(c[2])]
        return [
            {"type": "file_citation", "index": index, "file_id": file_id, "filename": filename}
            for index, file_id, filename in sorted(named or cited)
        ]

    async def close(self) -> None:
        return None


class FileSearchKind:
    type = "file_search"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        spec = validated(FileSearchSpec, tool, param)
        if spec.filters is not None:
            check_filter(spec.filters, f"{param}.filters")

    def echo(self, tool: JSONDict) -> JSONDict:
        echoed: JSONDict = {"type": "file_search", "vector_store_ids": [], "filters": None,
                  "max_num_results": DEFAULT_RESULTS, "ranking_options": {
                      "ranker": "auto", "score_threshold": 0.0, "hybrid_search": None}}  # fmt: skip
        echoed.update({k: v for k, v in tool.items() if v is not None})
        return echoed

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        if len(tools) > 1:
            raise InvalidRequestError(
                "Give one file_search tool; it may search two vector stores.",
                code="invalid_value", param=f"tools[{tools[1][0]}]",
            )  # fmt: skip
        index, tool = tools[0]
        searcher: Searcher = context.searcher
        spec = FileSearchSpec.model_validate(tool)
        for n, vector_store_id in enumerate(spec.vector_store_ids):
            param = f"tools[{index}].vector_store_ids[{n}]"
            await searcher.check(context.owner, vector_store_id, param)
        return FileSearchTools(spec, context, searcher)
