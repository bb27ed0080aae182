"""The named things the test options refer to, in one place: suites (`--suite`), setups
(`--setup`), stack presets (`--stack-config=server:<preset>`), and the APIs and providers
of an ad-hoc stack (`--stack-config=inference=fake,storage=sqlite`).

Read top to bottom; adding a suite, a setup or a provider is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- suites: which tests run ----------------------------------------------------------


@dataclass(frozen=True)
class Suite:
    """Tests under any of `roots` (paths from the repository root), or, with `fixtures`,
    only those using one of them; `setup` is used when --setup is not given."""

    roots: tuple[str, ...]
    description: str
    fixtures: tuple[str, ...] = ()
    setup: str | None = None


SUITES: dict[str, Suite] = {
    "base": Suite(
        ("tests/integration/conversations", "tests/integration/inference"),
        "the Conversations API and chat completions: what every deployment must pass",
    ),
    "responses": Suite(
        (
            "tests/integration/conversations",
            "tests/integration/embedded_responses",
            "tests/integration/upstream",
        ),
        "turns: Responses on conversations and chains, streaming, the upstream adapter",
    ),
    "tools": Suite(("tests/integration/tools",), "server-side MCP tools and the tool loop"),
    "vision": Suite(
        ("tests/integration",), "tests that need a vision model", fixtures=("vision_model_id",)
    ),
    "embeddings": Suite(
        ("tests/integration",),
        "tests that need an embedding model",
        fixtures=("embedding_model_id",),
    ),
    "security": Suite(("tests/integration/security",), "keys, tenants, limits, faults"),
    "operations": Suite(
        ("tests/integration/operations",), "inspect, providers, metrics, traces, logs"
    ),
}

# -- setups: model and environment defaults for a kind of deployment --------------------


@dataclass(frozen=True)
class Setup:
    """Defaults for the model options (option name without dashes -> value), environment
    variables set unless already set, and config settings for library/server stacks.
    A flag given on the command line (or its CONVOSTACK_TEST_* variable) wins."""

    description: str
    models: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)


SETUPS: dict[str, Setup] = {
    "embedded": Setup(
        "the embedded SmolLM2-135M (the default stack; no network)",
        models={"text_model": "smollm2-135m-instruct"},
    ),
    "ollama": Setup(
        "Ollama on localhost:11434 (ollama serve; ollama pull llama3.2:3b)",
        models={
            "text_model": "llama3.2:3b",
            "vision_model": "llama3.2-vision:11b",
            "embedding_model": "all-minilm:l6-v2",
            "embedding_dimension": "384",
        },
        settings={"upstream": "http://127.0.0.1:11434/v1"},
    ),
    "vllm": Setup(
        "vLLM on localhost:8000 (vllm serve <model>)",
        models={"text_model": "meta-llama/Llama-3.2-3B-Instruct"},
        settings={"upstream": "http://127.0.0.1:8000/v1"},
    ),
    "openai": Setup(
        "OpenAI itself; needs OPENAI_API_KEY",
        models={
            "text_model": "gpt-4.1-mini",
            "vision_model": "gpt-4.1-mini",
            "embedding_model": "text-embedding-3-small",
            "embedding_dimension": "1536",
            "judge_model": "gpt-4.1",
            "safety_shield": "omni-moderation-latest",
        },
        settings={"upstream": "https://api.openai.com/v1", "upstream_api_key": "${OPENAI_API_KEY}"},
    ),
    "fake": Setup(
        "the fake upstream (convostack.testing.fake_upstream): deterministic echo, no model",
        models={
            "text_model": "fake-model",
            "embedding_model": "fake-model",
            "embedding_dimension": "8",
        },
        settings={"upstream": "${FAKE_UPSTREAM}"},
    ),
}

# -- stacks: --stack-config=server:<preset>, and ad-hoc api=provider stacks --------------

# Named configurations (config settings), for `server:<preset>` or in-process `<preset>`.
STACK_PRESETS: dict[str, dict[str, object]] = {
    "starter": {},  # the defaults: the embedded model, SQLite under the test's folder
}

# The APIs of an ad-hoc stack (our layers) and, for each provider, the settings it
# means. `fake` starts the fake upstream for the session (and, like --setup=fake, makes
# --inference-mode default to live: there is nothing to record); `openai_compat` takes its URL
# from CONVOSTACK_UPSTREAM (and key from CONVOSTACK_UPSTREAM_API_KEY), e.g. via --env;
# `postgres` takes its URL from --db.
ADHOC_APIS: dict[str, dict[str, dict[str, object]]] = {
    "inference": {
        "embedded": {},
        "openai_compat": {
            "upstream": "${CONVOSTACK_UPSTREAM}",
            "upstream_api_key": "${CONVOSTACK_UPSTREAM_API_KEY}",
        },
        "fake": {"upstream": "${FAKE_UPSTREAM}"},
    },
    "storage": {"sqlite": {}, "postgres": {"db": "${DB}"}},
}
