#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The warm pool's refill rate and the /execute latency it buys, for one daemon binary
($ISOL8_BIN): run it for two builds to compare a change.

  refill: runs per second with poolStrategy "secure" (each run a new sandbox), 8 clients
  /execute: sequential p50/p99 of `bash -c true` and of a python `pass` over keep-alive
"""

import http.client
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
from isol8test import MASTER, Daemon  # noqa: E402
from bench import pct, print_table, sequential  # noqa: E402

POOL = 16


def refill_rate(seconds=5.0, clients=8):
    """With poolStrategy "secure" every run takes a fresh sandbox and none is reused: runs per
    second under load are bounded by how fast the pool builds sandboxes."""
    d = Daemon(config={"poolStrategy": "secure", "poolSize": {"clean": POOL, "dirty": 0},
                       "maxConcurrent": clients, "queue": {"maxSize": 1000}}).start()
    try:
        time.sleep(1)   # the first pool is built
        body = json.dumps({"request": {"cmd": "true"}})
        hdr = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}
        stop = time.perf_counter() + seconds

        def worker(_):
            conn = http.client.HTTPConnection("127.0.0.1", d.port)
            n = 0
            while time.perf_counter() < stop:
                conn.request("POST", "/execute", body=body, headers=hdr)
                r = conn.getresponse()
                r.read()
                n += r.status == 200
            conn.close()
            return n

        with ThreadPoolExecutor(clients) as ex:
            total = sum(ex.map(worker, range(clients)))
        return total / seconds
    finally:
        d.stop()


def main():
    rows = [("pool refill: runs/s with `poolStrategy: secure` (a new sandbox each), 8 clients", f"{refill_rate():.0f}/s", "")]
    d = Daemon(config={"poolSize": {"clean": 4, "dirty": 4}}).start()
    try:
        for name, req in (("`/execute` of `bash -c true`", {"cmd": "true"}),
                          ("`/execute` of a python `pass`", {"code": "pass", "runtime": "python"})):
            t = sequential(d.port, req)
            rows.append((name, f"p50 {pct(t, 50):.2f} ms", f"p99 {pct(t, 99):.2f} ms"))
    finally:
        d.stop()
    print(f"binary: {os.environ.get('ISOL8_BIN', 'build/src/isol8')}")
    print_table(rows)


if __name__ == "__main__":
    main()
