#!/usr/bin/env bash
# PostgreSQL's server binaries, for the PostgreSQL test suites, from Debian's packages when
# they are missing (`make test-postgres` then starts and stops a throwaway server on
# 127.0.0.1 itself; nothing is configured system-wide). Elsewhere, install PostgreSQL by
# hand or set CONVOSTACK_PG_BINDIR.
set -euo pipefail
if [ -n "${CONVOSTACK_PG_BINDIR:-}" ] || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ||
    command -v initdb >/dev/null; then
    exit 0
fi
exec bash "$(dirname "$0")/apt-install.sh" \
    "the PostgreSQL suites (or set CONVOSTACK_PG_BINDIR to the server's bin folder)" postgresql
