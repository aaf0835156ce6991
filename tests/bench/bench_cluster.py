#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Several servers as one (issue 17's targets): the added latency of a forwarded run against a
local one (target: under 1 ms p50 on loopback), and the throughput of three servers against one
through the balancer.

Three servers share PostgreSQL behind HAProxy (docs/examples/haproxy.cfg), as in
tests/integration/test_cluster.py. Latency: sequential `true` runs in one session held by
node-1, over one keep-alive connection, sent straight to node-1 (local) and to node-2
(forwarded), in alternating rounds. Throughput: wrk through HAProxy with 8 connections, runs
without a session, against three servers and against one (HAProxy with one server). Prints a
Markdown table."""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
from bench import pct, post_script, print_table, sequential, wrk_stats  # noqa: E402
import dbservers  # noqa: E402
import test_cluster  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_SEQ", "300"))


def session_runs(port, session, n):
    return sequential(port, {"code": "true", "runtime": "bash"}, n, session=session)


class Cluster(test_cluster.ClusterBase):
    db_class = dbservers.Postgres
    balancer_class = test_cluster.HAProxy


def main():
    Cluster.setUpClass()
    rows = []
    try:
        d = Cluster.daemons
        session_runs(d[0].port, "bench", 1)   # made on node-1
        local, forwarded = [], []
        for _ in range(ROUNDS):
            local.append(pct(session_runs(d[0].port, "bench", N), 50))
            forwarded.append(pct(session_runs(d[1].port, "bench", N), 50))
        lo, fw = statistics.median(local), statistics.median(forwarded)
        rows.append((f"`true` in a session, sequential, median of {ROUNDS} rounds' p50 ({N} runs each): local / forwarded",
                     f"{lo:.2f} / {fw:.2f} ms", f"{fw - lo:+.2f} ms"))
        rows.append(("each round's p50: local; forwarded", "; ".join(f"{x:.2f}" for x in local),
                     "; ".join(f"{x:.2f}" for x in forwarded)))
        script = post_script(json.dumps({"request": {"code": "true", "runtime": "bash"}}))
        try:
            three = wrk_stats(f"http://127.0.0.1:{Cluster.balancer.port}/execute", 8, script)
            one_lb = test_cluster.HAProxy([Cluster.ports[0]])
            try:
                time.sleep(1)
                one = wrk_stats(f"http://127.0.0.1:{one_lb.port}/execute", 8, script)
            finally:
                one_lb.stop()
        finally:
            os.unlink(script)
        rows.append(("`true`, 8 clients through HAProxy: 1 server / 3 servers (exec/s)", f"{one[0]:.0f} / {three[0]:.0f}",
                     f"x{three[0] / one[0]:.2f}"))
        rows.append(("p50 / p99 at 8 clients: 1 server; 3 servers (ms)", f"{one[1]:.1f} / {one[2]:.1f}",
                     f"{three[1]:.1f} / {three[2]:.1f}"))
    finally:
        Cluster.tearDownClass()
    print(f"binary: {os.environ.get('ISOL8_BIN', 'build/src/isol8')}; {os.cpu_count()} CPUs (three servers share them)")
    print_table(rows)


if __name__ == "__main__":
    main()
