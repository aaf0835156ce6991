#!/usr/bin/env bash
# Installs, builds (gcc, gcc with AddressSanitizer+UBSan, clang: all with -Werror) and runs every
# test: unit, integration, security, scripts and system suites on the normal build, then unit and
# integration suites again under the sanitizers. Ends with one
# line "N passed, N failed, N skipped" counted from meson's JUnit logs. Run as root.
set -uo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --test || exit 1
./scripts/build.sh --asan --clang || exit 1

# Would a fresh machine have every package this build and the Python tests use? (The checker
# comes with the project's shared folder beside the checkout, as in CI.)
fresh_check=../shared/tools/check-fresh-deps
if [ -x "$fresh_check" ]; then
        "$fresh_check" build || exit 1
elif [ -n "${CI:-}" ]; then
        echo "test.sh: $fresh_check is missing" >&2
        exit 1
fi

status=0
meson test -C build --print-errorlogs --no-rebuild --num-processes 2 || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --no-rebuild --num-processes 2 --suite unit --suite integration || status=1

/usr/bin/python3 - build/meson-logs/testlog.junit.xml build-asan/meson-logs/testlog.junit.xml <<'PY' || status=1
import json
import sys
import xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        failed += 1
        continue
    suites_failed = set()
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                suites_failed.add(suite.get("name", ""))
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    # A test whose every subtest passed can still fail as a whole (a leak found at exit, a crash
    # after its last line, a timeout): meson's JSON log beside the JUnit one has its result.
    try:
        with open(path.replace("testlog.junit.xml", "testlog.json")) as f:
            for line in f:
                t = json.loads(line)
                if t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and \
                        not any(n.endswith(t.get("name", "")) for n in suites_failed):
                    print(f"failed as a whole: {t.get('name')} ({t.get('result')})", file=sys.stderr)
                    failed += 1
    except (OSError, ValueError) as e:
        print(f"cannot read the JSON log beside {path}: {e}", file=sys.stderr)
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
exit $status
