#!/usr/bin/env bash
# Chromium, for the web UI's browser test (`make test-ui`), from Debian's packages when it
# is missing. The test drives it through Playwright's Python package with
# executable_path: Playwright's own browser download is not used. Elsewhere, install
# Chromium by hand or set CONVOSTACK_CHROMIUM to its executable.
set -euo pipefail
if [ -n "${CONVOSTACK_CHROMIUM:-}" ] || command -v chromium >/dev/null; then
    exit 0
fi
exec bash "$(dirname "$0")/apt-install.sh" "the web UI's browser test (or set CONVOSTACK_CHROMIUM)" chromium
