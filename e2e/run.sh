#!/usr/bin/env bash
# End-to-end tests of loginwith in headless Chromium (Debian's package, never a downloaded
# browser): installs what is missing (Chromium; nginx and openssl for the production scenario;
# caddy and sqlite3 for the forward-authentication scenarios), builds the app and the Facebook
# stand-in, runs e2e/tests with `node --test`.
# Screenshots of every page go to e2e/artifacts/<scenario>/ (git-ignored).
#
#   bash e2e/run.sh                        # the suite
#   UPDATE_SCREENSHOTS=1 bash e2e/run.sh   # ... then refresh docs/screenshots/
#
# LOGINWITH_BIN tests another binary; CHROMIUM_PATH another Chromium; E2E_CONCURRENCY sets
# how many test files run at once (default 2).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/.." && pwd)"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH="$CHROMIUM"
# playwright-core never downloads a browser; say so anyway, for any tool that might.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

echo "== chromium"
if [ ! -x "$CHROMIUM" ]; then
  echo "$CHROMIUM is missing: installing Debian's chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y chromium chromium-driver; then
    as_root apt-get update
    as_root apt-get install -y chromium chromium-driver
  fi
fi
"$CHROMIUM" --version 2>/dev/null || { echo "error: $CHROMIUM does not run" >&2; exit 1; }

echo "== colour emoji font (tests/11-brand shows a site name with an emoji)"
# Without it Chromium draws the emoji as an empty box in the screenshots.
if ! fc-list 2>/dev/null | grep -qi 'emoji'; then
  echo "no emoji font: installing Debian's fonts-noto-color-emoji"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y fonts-noto-color-emoji; then
    as_root apt-get update
    as_root apt-get install -y fonts-noto-color-emoji
  fi
fi

echo "== nginx, openssl, caddy and sqlite3 (tests/09-production-behind-nginx, tests/12-forward-auth-nginx, tests/13-who-may-enter, tests/14-issuer-logout)"
# Debian's nginx installs to /usr/sbin, which is not on every PATH. Debian's caddy (2.6) is
# the second gateway of tests/13, which reads the server's database with sqlite3. (Debian's
# caddy package also enables a caddy service serving :80 where services start; the scenarios
# run caddy of their own, on loopback ports, and need none.)
missing=()
[ -x "${NGINX_PATH:-/usr/sbin/nginx}" ] || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
[ -x "${CADDY_PATH:-/usr/bin/caddy}" ] || missing+=(caddy)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "missing: installing Debian's ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y "${missing[@]}"; then
    as_root apt-get update
    as_root apt-get install -y "${missing[@]}"
  fi
fi
"${NGINX_PATH:-/usr/sbin/nginx}" -v 2>&1 || { echo "error: nginx does not run" >&2; exit 1; }
openssl version || { echo "error: openssl does not run" >&2; exit 1; }
"${CADDY_PATH:-/usr/bin/caddy}" version || { echo "error: caddy does not run" >&2; exit 1; }
sqlite3 --version || { echo "error: sqlite3 does not run" >&2; exit 1; }

echo "== node packages (e2e/)"
node --version
cd "$E2E_DIR"
if [ ! -f node_modules/.package-lock.json ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ package.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  echo "node_modules is up to date"
fi

echo "== cargo test --no-run (the binary and examples/facebook_stand_in)"
# The same build as `cargo test` (which builds the binary and the examples too), so after
# .ci/run's `cargo test` this builds nothing: a plain `cargo build` would compile the crate a
# second time without the dev-dependencies' features. The binary then carries the inert
# test-support hooks (extra functions nobody calls); release builds never do.
(cd "$ROOT" && cargo test --no-run --quiet)

echo "== end-to-end tests"
rm -rf "$E2E_DIR/artifacts"
started=$SECONDS
node --test \
  --test-reporter=spec \
  --test-concurrency="${E2E_CONCURRENCY:-2}" \
  --test-timeout=180000 \
  tests/*.test.mjs
echo "end-to-end tests passed in $((SECONDS - started)) s; screenshots in e2e/artifacts/"

if [ "${UPDATE_SCREENSHOTS:-}" = "1" ]; then
  echo "== docs/screenshots"
  mkdir -p "$ROOT/docs/screenshots"
  # copy_shots WIDTH SCENARIO NAME PAGE...: e2e/artifacts/SCENARIO-WIDTH/NN-PAGE.png to
  # docs/screenshots/WIDTH-NAME-PAGE.png (WIDTH-PAGE.png when NAME is empty).
  copy_shots() {
    local width="$1" scenario="$2" name="$3" page shots target
    shift 3
    for page in "$@"; do
      shots=("$E2E_DIR/artifacts/$scenario-$width/"[0-9][0-9]-"$page".png)
      if [ ! -f "${shots[0]}" ]; then
        echo "error: no $page screenshot at $width width in e2e/artifacts/$scenario-$width/" >&2
        exit 1
      fi
      target="docs/screenshots/$width-${name:+$name-}$page.png"
      cp "${shots[0]}" "$ROOT/$target"
      echo "$target"
    done
  }
  for width in desktop phone; do
    copy_shots "$width" layout "" home consent preloader signed-in error
    # A branded deployment ([site]; tests/11-brand).
    copy_shots "$width" brand brand home preloader signed-in error privacy
  done
fi
