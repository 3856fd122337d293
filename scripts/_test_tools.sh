# Sourced by scripts/test.sh after scripts/_venv.sh: the programs some tests drive
# besides Python packages, installed where missing and silent when present.
#   - Debian's chromium and chromium-driver, for the explorer's browser test
#     (tests/test_explorer_browser.py); installed with apt-get, so as root only.
#   - Debian's faketime (libfaketime), which runs a validator with its clock ahead for
#     tests/test_clock_bound.py; installed with apt-get, so as root only.
#   - promtool, Prometheus's rule checker, for tests/test_monitoring.py: taken out
#     of Debian's prometheus package into $VENV/bin, without installing the server
#     (the package would start one).
#   - Debian's softhsm2, the PKCS#11 token of the HSM tests (tests/softhsm.py).
# Without root, a missing browser or SoftHSM2 is reported in one line and its tests
# are skipped; under CI (CI=true) those tests fail instead, so a green CI always ran them.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium and chromium-driver for the explorer's browser test (apt-get, once)..." >&2
    apt_log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      echo "apt-get could not install chromium and chromium-driver" >&2
    fi
    rm -f "$apt_log"
  else
    echo "chromium or chromedriver missing: the browser test will be skipped (as root: apt-get install chromium chromium-driver)" >&2
  fi
fi
if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's faketime for the clock-bound test (apt-get, once)..." >&2
    apt_log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends faketime; } >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      echo "apt-get could not install faketime" >&2
    fi
    rm -f "$apt_log"
  else
    echo "libfaketime missing: the clock-bound test will be skipped (as root: apt-get install faketime)" >&2
  fi
fi
if [ ! -x "$VENV/bin/promtool" ] && command -v apt-get >/dev/null 2>&1; then
  echo "fetching promtool from Debian's prometheus package into $VENV/bin (apt-get download, once)..." >&2
  promtool_tmp="$(mktemp -d)"
  if (cd "$promtool_tmp" && { apt-get download -qq prometheus >/dev/null 2>&1 \
        || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null && apt-get download -qq prometheus >/dev/null; }; }) \
      && dpkg-deb --fsys-tarfile "$promtool_tmp"/prometheus_*.deb | tar -x -C "$promtool_tmp" ./usr/bin/promtool; then
    mv "$promtool_tmp/usr/bin/promtool" "$VENV/bin/promtool"
  else
    echo "could not fetch promtool: the rule check with it will be skipped" >&2
  fi
  rm -rf "$promtool_tmp"
fi
if ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's softhsm2 for the HSM tests (apt-get, once)..." >&2
    apt_log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends softhsm2; } >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      echo "apt-get could not install softhsm2" >&2
    fi
    rm -f "$apt_log"
  else
    echo "softhsm2 missing: the HSM tests will be skipped (as root: apt-get install softhsm2)" >&2
  fi
fi
