#!/bin/sh
# Re-fetch libsodium-wrappers-sumo's ES module build from the npm registry
# into frontend/vendor/, and print the sha256 of each file for README.md.
# Needs node/npm only when updating; `make run` and the tests use the
# vendored files as they are.
set -eu
VERSION="${1:-0.8.4}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "libsodium-wrappers-sumo@$VERSION" "libsodium-sumo@$VERSION" >/dev/null
mkdir wrappers sumo
tar xzf "libsodium-wrappers-sumo-$VERSION.tgz" -C wrappers
tar xzf "libsodium-sumo-$VERSION.tgz" -C sumo
cp sumo/package/dist/modules-sumo-esm/libsodium-sumo.mjs "$HERE/libsodium-sumo.mjs"
# The wrappers import the bare name "libsodium-sumo"; a browser without an
# import map (the CSP forbids inline scripts) needs a relative path.
sed 's#from"libsodium-sumo"#from"./libsodium-sumo.mjs"#' \
  wrappers/package/dist/modules-sumo-esm/libsodium-wrappers.mjs > "$HERE/libsodium-wrappers.mjs"
grep -q 'from"./libsodium-sumo.mjs"' "$HERE/libsodium-wrappers.mjs" || { echo "import not rewritten" >&2; exit 1; }
cp wrappers/package/LICENSE "$HERE/LICENSE.libsodium-wrappers"
cp sumo/package/LICENSE "$HERE/LICENSE.libsodium-sumo"
echo "upstream:"
sha256sum wrappers/package/dist/modules-sumo-esm/libsodium-wrappers.mjs sumo/package/dist/modules-sumo-esm/libsodium-sumo.mjs
echo "vendored:"
cd "$HERE" && sha256sum libsodium-wrappers.mjs libsodium-sumo.mjs
