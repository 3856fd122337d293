# Sourced by the scripts: makes ./.venv with somnode and its test extra installed.
# Re-installs only when pyproject.toml changed since the last install. Says what it
# does on stderr before each slow step, so a first run never sits silent for a minute.
VENV="${SOMNODE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "somnode needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating the virtual environment $VENV with $("$PY" --version 2>&1) (first run only)..." >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.somnode-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing somnode and its dependencies into $VENV with pip (a minute or two the first time)..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # setuptools announces every editable install with a banner; only that one is silenced.
  PYTHONWARNINGS="ignore:Editable installation:UserWarning" "$VENV/bin/python" -m pip install --quiet -e '.[test]'
  touch "$stamp"
  echo "installed; $VENV/bin/somnode is ready" >&2
fi
