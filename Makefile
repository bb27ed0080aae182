# One-command dev loop. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve test test-unit test-library test-server lint typecheck format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/convostack serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -q tests/unit

test-library: install
	$(BIN)/pytest -q tests/integration --stack-config=library

test-server: install
	$(BIN)/pytest -q tests/integration --stack-config=server

# PostgreSQL: a throwaway server on 127.0.0.1, started here and stopped afterwards, for
# the store tests, the replica tests and the integration suite in both modes (each mode on
# a database of its own). CONVOSTACK_PG_BINDIR names the server binaries if they are not
# found (Debian: apt-get install -y postgresql).
.PHONY: test-postgres postgres-suites
test-postgres: install
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

# What CI runs: static checks, unit tests, then the integration suite in both modes.
test: lint typecheck test-unit test-library test-server test-postgres

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
