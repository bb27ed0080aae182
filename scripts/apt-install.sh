#!/usr/bin/env bash
# Installs Debian packages for a test suite (`apt-install.sh WHAT-FOR PACKAGE...`), with
# sudo when not root; without apt-get, says what is missing and fails.
set -euo pipefail
what_for=$1
shift
if ! command -v apt-get >/dev/null; then
    echo "$* (Debian's packages) are needed for $what_for: install them by hand." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "$@"
