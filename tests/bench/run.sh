#!/usr/bin/env bash
# Builds isol8 and runs the benchmarks; prints a Markdown table. Needs root, wrk and bwrap
# (scripts/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/build.sh
ISOL8_BIN="$PWD/build/src/isol8" exec /usr/bin/python3 tests/bench/bench.py
