#!/usr/bin/env bash
# Install everything the test suite needs, then run it (the README's test command):
#   - Debian's chromium, for the headless consent-page tests (Playwright drives it through
#     executable_path=/usr/bin/chromium and never downloads a browser of its own);
#   - Debian's redis-server and postgresql, started here on loopback for the whole run
#     (tests/support/services.py; the tests read AAUTH_TEST_REDIS_URL and
#     AAUTH_TEST_POSTGRES_URL) and stopped when it ends;
#   - two virtual environments, one per MCP SDK line: .venv with the test extras on the 1.x
#     line (langchain-mcp-adapters pins mcp<2), .venv-mcp2 with mcp 2.x, fastmcp 4 and
#     langchain[mcp] for the tests that touch MCP (MCP_TESTS below);
#   - the Node.js interop peers (@hellocoop/httpsig, @hellocoop/mockin) from tests/interop;
# then pytest: the whole suite in .venv, then the MCP tests in .venv-mcp2.
#
#   bash scripts/test.sh                 # both
#   bash scripts/test.sh ARGS...         # pytest ARGS in .venv only
#   bash scripts/test.sh --mcp2 ARGS...  # pytest ARGS (default: MCP_TESTS) in .venv-mcp2 only
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_TESTS=(
  tests/integrations
  tests/langchain/test_mcp_tools.py
  tests/examples/test_mcp_example_scripts.py
)

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm ci --prefix tests/interop --no-audit --no-fund

mcp2() {
  python3 -m venv .venv-mcp2
  .venv-mcp2/bin/pip install -q -e '.[test-mcp2]'
  .venv-mcp2/bin/python -m pytest "$@"
}

if [ "${1:-}" = "--mcp2" ]; then
  shift
  if [ $# -eq 0 ]; then set -- "${MCP_TESTS[@]}"; fi
  mcp2 "$@"
  exit
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'

# Redis and PostgreSQL on loopback for this run, stopped however it ends.
services="$(mktemp -d)"
chmod 755 "$services"
trap '.venv/bin/python tests/support/services.py down "$services"; rm -rf "$services"' EXIT
eval "$(.venv/bin/python tests/support/services.py up "$services")"

if [ $# -gt 0 ]; then
  .venv/bin/python -m pytest "$@"
  exit
fi
.venv/bin/python -m pytest
mcp2 "${MCP_TESTS[@]}"
