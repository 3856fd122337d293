#!/usr/bin/env bash
# Installs somnode with its test extra into ./.venv, the browser and promtool the
# tests drive (scripts/_test_tools.sh), checks lint (ruff) and types (mypy), and
# runs the test suite.
# Usage: scripts/test.sh [pytest args...]   (SOMNODE_LONG=1 for the long runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_test_tools.sh
"$VENV/bin/ruff" check node consensus tests scripts
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "$@"
