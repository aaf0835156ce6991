#!/usr/bin/env bash
# Builds isol8 and runs the benchmarks; prints a Markdown table. Needs root, wrk, bwrap and perf
# (`scripts/deps.sh --test` installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/build.sh
export ISOL8_BIN="$PWD/build/src/isol8"
/usr/bin/python3 tests/bench/bench.py
echo
/usr/bin/python3 tests/bench/bench_more.py
echo
/usr/bin/python3 tests/bench/bench_pool.py
echo
/usr/bin/python3 tests/bench/bench_defaults.py
echo
/usr/bin/python3 tests/bench/bench_proxy.py
echo
/usr/bin/python3 tests/bench/bench_stages.py
