#!/usr/bin/env bash
# Installs somnode into ./.venv (first run only) and starts a local network of
# validators on 127.0.0.1. Ctrl-C stops them all.
# Usage: scripts/testnet.sh [--validators N] [--dir DIR] [--base-port P]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec "$VENV/bin/somnode" testnet "$@"
