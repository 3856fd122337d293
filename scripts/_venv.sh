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
# The C parts (node/ledger/_tree.c, node/core/_rfc6962.c) are compiled at install: they need a C compiler and the
# headers of Python and OpenSSL. Debian's packages for them are installed where missing (apt-get, so as root only).
if ! command -v gcc >/dev/null 2>&1 || [ ! -f /usr/include/openssl/evp.h ] \
    || ! "$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's gcc, libssl-dev and python3-dev to compile somnode's C parts (apt-get, once)..." >&2
    apt_log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends gcc libc6-dev libssl-dev python3-dev; } >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      echo "apt-get could not install gcc, libssl-dev and python3-dev" >&2
    fi
    rm -f "$apt_log"
  else
    echo "somnode compiles node/ledger/_tree.c and node/core/_rfc6962.c: it needs gcc and the headers of Python and OpenSSL" \
         "(Debian, as root: apt-get install gcc libssl-dev python3-dev)" >&2
  fi
fi
stamp="$VENV/.somnode-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$(find node -name '*.c' -newer "$stamp" 2>/dev/null)" ]; then
  echo "installing somnode and its dependencies into $VENV with pip (a minute or two the first time)..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # setuptools announces every editable install with a banner, and calls ext-modules in pyproject.toml
  # experimental at every build; only these two are silenced.
  PYTHONWARNINGS='ignore:Editable installation:UserWarning,ignore:`[tool.setuptools.ext-modules]`' \
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
  touch "$stamp"
  echo "installed; $VENV/bin/somnode is ready" >&2
fi
