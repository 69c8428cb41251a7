#!/usr/bin/env bash
# The browser client's tests: its type declarations (tsc --noEmit), its unit
# tests (node --test, fake WebSocket and clock) and the demo in headless
# Chromium against the real local stack (web/e2e). Standalone, loopback only
# (every port is a free 127.0.0.1 port) and bounded in time. Installs
# Debian's chromium and the npm packages (npm ci) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null && command -v npm >/dev/null || { echo "browser-tests: node and npm are needed" >&2; exit 1; }
chromium=${CHROMIUM:-/usr/bin/chromium}
if ! [ -x "$chromium" ]; then
  # 10 minutes: the package and its dependencies are a few hundred MB.
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version

(cd web && timeout 300 npm ci --no-audit --no-fund)
(cd web && npx tsc -p tsconfig.json)
(cd web && timeout 120 node --test client/test/)

work=$(mktemp -d)
shots=$(mktemp -d "${TMPDIR:-/tmp}/groupcast-screens.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/devstack" ./cmd/devstack
# 15 minutes for everything: the stack builds its functions (minutes on a
# cold cache), then three scenarios of a few seconds to a minute each.
if ! (cd web && DEVSTACK_BIN="$work/devstack" CHROMIUM="$chromium" SCREENSHOT_DIR="$shots" \
      timeout 900 node --test --test-concurrency=1 --test-timeout=600000 e2e/); then
  echo "browser-tests: failed; screenshots in $shots" >&2
  exit 1
fi
rm -rf "$shots"
