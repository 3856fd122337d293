#!/usr/bin/env bash
# Installs somnode with its test extra into ./.venv, checks lint (ruff) and types (mypy),
# and runs the test suite.
# Usage: scripts/test.sh [pytest args...]   (SOMNODE_LONG=1 for the long runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/ruff" check node consensus tests scripts
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "$@"
