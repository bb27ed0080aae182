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
if ! command -v apt-get >/dev/null; then
    echo "PostgreSQL's server (initdb) is needed for the PostgreSQL suites: install it, or" \
        "set CONVOSTACK_PG_BINDIR to its bin folder." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends postgresql
