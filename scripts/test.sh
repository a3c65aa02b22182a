#!/usr/bin/env bash
# Install everything the test suite needs, then run it (the README's test command):
#   - Debian's chromium, for the headless consent-page tests (Playwright drives it through
#     executable_path=/usr/bin/chromium and never downloads a browser of its own);
#   - a virtual environment with the package and its test extras;
#   - the Node.js interop peers (@hellocoop/httpsig, @hellocoop/mockin) from tests/interop;
# then pytest, with any arguments passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
npm ci --prefix tests/interop --no-audit --no-fund
exec .venv/bin/python -m pytest "$@"
