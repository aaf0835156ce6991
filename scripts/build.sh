#!/usr/bin/env bash
# Builds isol8 into build/ (and, with --asan, an AddressSanitizer+UBSan build into build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d build ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null
if [ "${1:-}" = "--asan" ]; then
        [ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
        ninja -C build-asan >/dev/null
fi
