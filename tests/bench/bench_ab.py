#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Two builds side by side: sequential /execute of `cmd: true` over keep-alive, 400 runs per
round, the builds alternating (A B, B A, ...) so that the machine's drift hits both alike.

  tests/bench/bench_ab.py OLD_ISOL8 NEW_ISOL8 [ROUNDS] [CONFIG_JSON]

BENCH_AB_CLIENTS=8 (or 8,32): instead of the sequential runs, wrk with that many keep-alive
clients for BENCH_DURATION (5s) per round: exec/s, p50 and p99 per round and their medians.
"""

import http.client
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import MASTER, Daemon  # noqa: E402


def run(port, n=400):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"request": {"cmd": "true"}})
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        conn.request("POST", "/execute", body, {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def main_clients(builds, rounds, config, clients):
    os.environ.setdefault("BENCH_DURATION", "5s")   # before bench reads it
    from bench import post_script, wrk_stats
    script = post_script(json.dumps({"request": {"cmd": "true"}}))
    res = {(name, c): [] for name in builds for c in clients}
    try:
        for rnd in range(rounds):
            for name in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
                isol8test.ISOL8 = builds[name]
                d = Daemon(config=config).start()
                try:
                    time.sleep(0.3)
                    for c in clients:
                        res[(name, c)].append(wrk_stats(f"http://127.0.0.1:{d.port}/execute", c, script))
                        # The runs of the connections wrk just closed end first (else the next
                        # row's clients find the tenant's queue share taken by them: 429).
                        time.sleep(0.5)
                finally:
                    d.stop()
    finally:
        os.unlink(script)
    print("| build | clients | exec/s per round | p99 per round (ms) | median exec/s | median p50 | median p99 |")
    print("|---|---|---|---|---|---|---|")
    for c in clients:
        for name in ("A", "B"):
            r = res[(name, c)]
            print(f"| {name}: `{builds[name]}` | {c} | {', '.join(f'{x[0]:.0f}' for x in r)} | "
                  f"{', '.join(f'{x[2]:.1f}' for x in r)} | {statistics.median(x[0] for x in r):.0f} | "
                  f"{statistics.median(x[1] for x in r):.1f} ms | {statistics.median(x[2] for x in r):.1f} ms |")


def main():
    builds = {"A": sys.argv[1], "B": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    config = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    if os.environ.get("BENCH_AB_CLIENTS"):
        return main_clients(builds, rounds, config, [int(c) for c in os.environ["BENCH_AB_CLIENTS"].split(",")])
    res = {"A": [], "B": []}
    for rnd in range(rounds):
        for name in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
            isol8test.ISOL8 = builds[name]
            d = Daemon(config=config).start()
            try:
                res[name].append(run(d.port))
            finally:
                d.stop()
    print("| build | p50 per round (ms) | median p50 | median p99 |")
    print("|---|---|---|---|")
    for name in ("A", "B"):
        p50s = [a for a, _ in res[name]]
        p99s = [b for _, b in res[name]]
        print(f"| {name}: `{builds[name]}` | {', '.join(f'{x:.2f}' for x in p50s)} | {statistics.median(p50s):.2f} ms | "
              f"{statistics.median(p99s):.2f} ms |")


if __name__ == "__main__":
    main()
