#!/usr/bin/env bash
# Builds isol8 into build/; with --asan also an AddressSanitizer+UBSan build into build-asan/, with
# --clang also a clang build into build-clang/ (both warning-free: the project builds with -Werror).
# Quiet when all goes well; on a failure it prints what meson or ninja said. A build directory
# whose configuration failed (no build.ninja) is wiped and configured again, never left broken.
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# build_dir DIR [meson setup options...]
build_dir() {
        local dir=$1
        shift
        if [ ! -f "$dir/build.ninja" ]; then
                rm -rf "$dir"
                if ! meson setup "$dir" "$@" >"$log" 2>&1; then
                        cat "$log" >&2
                        rm -rf "$dir"
                        echo "build.sh: 'meson setup $dir' failed (see above); nothing was left in $dir" >&2
                        return 1
                fi
        fi
        if ! ninja -C "$dir" >"$log" 2>&1; then
                cat "$log" >&2
                echo "build.sh: 'ninja -C $dir' failed (see above)" >&2
                return 1
        fi
}

build_dir build --buildtype=debugoptimized || exit 1
for arg in "$@"; do
        case "$arg" in
                --asan) build_dir build-asan -Db_sanitize=address,undefined -Db_lundef=false || exit 1 ;;
                --clang) CC=clang build_dir build-clang || exit 1 ;;
                *) echo "build.sh: unknown option '$arg' (--asan, --clang)" >&2; exit 2 ;;
        esac
done
