#!/bin/sh
# Re-fetch the browser's third-party code from the npm registry into
# frontend/vendor/, at exact versions, and print the sha256 of each file for
# README.md. Needs node/npm only when updating; `make run` and the tests use
# the vendored files as they are.
#
#   ./update.sh                  both
#   ./update.sh libsodium [VER]  libsodium-wrappers-sumo (default 0.8.4)
#   ./update.sh zxcvbn           zxcvbn-ts and its dictionaries (versions below)
#   ./update.sh pdflib           pdf-lib, the browser's follow-up report (version below)
#   ./update.sh zxing            @zxing/library, label scanning without BarcodeDetector
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# zxcvbn-ts, the passphrase estimate (frontend/js/passphrase.js). Exact
# versions: a dictionary change moves the estimate, so it is a reviewed update.
ZXCVBN_CORE=4.2.0
ZXCVBN_COMMON=4.1.3
ZXCVBN_EN=4.1.1
ZXCVBN_FR=4.1.2
DICTIONARY_COMPRESSION=3.0.1 # what the language packages import to unpack their lists
FASTEST_LEVENSHTEIN=1.0.16   # core's one dependency, pinned by core itself
PDF_LIB=1.17.1               # frontend/js/photos/report.js
ZXING=0.23.0                 # frontend/js/barcode.js, where BarcodeDetector is missing

libsodium() {
  VERSION="${1:-0.8.4}"
  mkdir "$WORK/sodium" && cd "$WORK/sodium"
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
  (cd "$HERE" && sha256sum libsodium-wrappers.mjs libsodium-sumo.mjs)
}

# Copy a package's ES modules (dist/**/*.mjs, no CommonJS, no source maps) to OUT/NAME.
copy_modules() {
  (cd "$1/package/dist" && find . -name '*.mjs' -exec install -D -m 644 {} "$OUT/$2/{}" \;)
}

zxcvbn() {
  mkdir "$WORK/zxcvbn" && cd "$WORK/zxcvbn"
  OUT="$HERE/zxcvbn-ts"
  npm pack --silent "@zxcvbn-ts/core@$ZXCVBN_CORE" "@zxcvbn-ts/language-common@$ZXCVBN_COMMON" \
    "@zxcvbn-ts/language-en@$ZXCVBN_EN" "@zxcvbn-ts/language-fr@$ZXCVBN_FR" \
    "@zxcvbn-ts/dictionary-compression@$DICTIONARY_COMPRESSION" \
    "fastest-levenshtein@$FASTEST_LEVENSHTEIN" >/dev/null
  for tgz in *.tgz; do mkdir "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"; done
  rm -rf "$OUT" && mkdir -p "$OUT/fastest-levenshtein"
  copy_modules "zxcvbn-ts-core-$ZXCVBN_CORE" core
  copy_modules "zxcvbn-ts-language-common-$ZXCVBN_COMMON" language-common
  copy_modules "zxcvbn-ts-language-en-$ZXCVBN_EN" language-en
  copy_modules "zxcvbn-ts-language-fr-$ZXCVBN_FR" language-fr
  copy_modules "zxcvbn-ts-dictionary-compression-$DICTIONARY_COMPRESSION" dictionary-compression
  install -m 644 "fastest-levenshtein-$FASTEST_LEVENSHTEIN/package/esm/mod.js" "$OUT/fastest-levenshtein/mod.mjs"
  # The two bare imports, made relative: no import map without inline script.
  sed -i "s#from 'fastest-levenshtein'#from '../../fastest-levenshtein/mod.mjs'#" "$OUT/core/utils/levenshtein.mjs"
  find "$OUT"/language-* -name '*.mjs' -exec \
    sed -i "s#from '@zxcvbn-ts/dictionary-compression/decompress'#from '../dictionary-compression/decompress.mjs'#" {} +
  if grep -rEn "(from|import) *['\"][^.'\"]" "$OUT"; then echo "a bare import is left" >&2; exit 1; fi
  # Licences (MIT) and the dictionaries' data notices (ODC-BY and others) stay beside the code.
  cp "zxcvbn-ts-core-$ZXCVBN_CORE/package/LICENSE.txt" "$OUT/LICENSE.core"
  cp "zxcvbn-ts-language-common-$ZXCVBN_COMMON/package/LICENSE.txt" "$OUT/LICENSE.language-common"
  cp "zxcvbn-ts-dictionary-compression-$DICTIONARY_COMPRESSION/package/LICENSE" "$OUT/LICENSE.dictionary-compression"
  cp "fastest-levenshtein-$FASTEST_LEVENSHTEIN/package/LICENSE.md" "$OUT/LICENSE.fastest-levenshtein.md"
  for lang in en fr; do
    eval "version=\$ZXCVBN_$(echo "$lang" | tr a-z A-Z)"
    cp "zxcvbn-ts-language-$lang-$version/package/LICENSE.txt" "$OUT/LICENSE.language-$lang"
    cp "zxcvbn-ts-language-$lang-$version/package/NOTICE.md" "$OUT/NOTICE.language-$lang.md"
    cp "zxcvbn-ts-language-$lang-$version/package/THIRD_PARTY_LICENSES.md" "$OUT/THIRD_PARTY_LICENSES.language-$lang.md"
  done
  echo "upstream tarballs:"
  sha256sum ./*.tgz
  (cd "$OUT" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
  echo "vendored: $(wc -l < "$OUT/SHA256SUMS") files, listed in zxcvbn-ts/SHA256SUMS"
  echo "SHA256SUMS: $(sha256sum "$OUT/SHA256SUMS" | cut -d' ' -f1)"
}

pdflib() {
  mkdir "$WORK/pdflib" && cd "$WORK/pdflib"
  npm pack --silent "pdf-lib@$PDF_LIB" >/dev/null
  tar xzf "pdf-lib-$PDF_LIB.tgz"
  # The self-contained ES build: it imports nothing, so nothing is rewritten.
  if grep -Eq "(^|[;}])import |from ?['\"]" package/dist/pdf-lib.esm.min.js; then echo "pdf-lib imports a module" >&2; exit 1; fi
  cp package/dist/pdf-lib.esm.min.js "$HERE/pdf-lib.esm.min.js"
  cp package/LICENSE.md "$HERE/LICENSE.pdf-lib.md"
  echo "upstream tarball:"
  sha256sum "pdf-lib-$PDF_LIB.tgz"
  echo "vendored:"
  (cd "$HERE" && sha256sum pdf-lib.esm.min.js LICENSE.pdf-lib.md)
}

zxing() {
  mkdir "$WORK/zxing" && cd "$WORK/zxing"
  npm pack --silent "@zxing/library@$ZXING" >/dev/null
  tar xzf "zxing-library-$ZXING.tgz"
  # The UMD build: imported for its side effect, it sets globalThis.ZXing and
  # imports nothing; no eval, so the CSP does not change.
  if grep -Eq "(^|[;}])import |from ?['\"]|eval\(|new Function" package/umd/index.min.js; then echo "zxing imports or evals" >&2; exit 1; fi
  cp package/umd/index.min.js "$HERE/zxing-library.umd.min.js"
  cp package/LICENSE "$HERE/LICENSE.zxing-library"
  echo "upstream tarball:"
  sha256sum "zxing-library-$ZXING.tgz"
  echo "vendored:"
  (cd "$HERE" && sha256sum zxing-library.umd.min.js LICENSE.zxing-library)
}

case "${1:-all}" in
  libsodium) libsodium "${2:-}" ;;
  zxcvbn) zxcvbn ;;
  pdflib) pdflib ;;
  zxing) zxing ;;
  all) libsodium && zxcvbn && pdflib && zxing ;;
  *) echo "usage: $0 [libsodium [VERSION] | zxcvbn | pdflib | zxing]" >&2; exit 2 ;;
esac
