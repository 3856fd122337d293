#!/usr/bin/env bash
# Installs somnode with its test extra into ./.venv and runs the test suite.
# Usage: scripts/test.sh [pytest args...]   (SOMNODE_LONG=1 for the long runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec "$VENV/bin/python" -m pytest "$@"
