#!/usr/bin/env bash
# Installs somnode with its test extra into ./.venv, the browser and promtool the
# tests drive (scripts/_test_tools.sh), and runs the test suite.
# Usage: scripts/test.sh [pytest args...]   (SOMNODE_LONG=1 for the long runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_test_tools.sh
exec "$VENV/bin/python" -m pytest "$@"
