#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""isol8 as a user runs it: the default configuration (poolSize {"clean": 1, "dirty": 1},
maxConcurrent 10), measured the way issue 18 states its targets.

  /execute of `cmd: true` with 1, 8 and 32 wrk clients: exec/s, p50, p99 (medians of
  BENCH_ROUNDS rounds, 2 by default, each round in the other order)
  one client: `cmd: true` and python `pass` p50 beside a bare fork+exec of the same
  program with the same environment, same run (a lean keep-alive client, bench.LeanClient;
  the same runs through http.client are reported too)
  the pool's own view afterwards (demand, warm target, measured build and clean cost)
  a burst from idle: 8 clients start at once against a fresh server (its pool at the floor);
  exec/s in 100 ms steps, and when the rate reached 90% of its steady rate
  BENCH_RUNS=N: N executions (8 clients), daemon RSS before and after (the 100,000-run mode)

ISOL8_BIN picks the binary (default build/src/isol8); prints Markdown tables.
"""

import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("BENCH_DURATION", "5s")   # before bench reads it
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
from bench import LeanClient, pct, post_script, print_table, rss_kb, side_by_side, wrk_stats  # noqa: E402
from isol8test import MASTER, Daemon  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "0"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def wrk_execute(port, conns, body):
    script = post_script(body)
    try:
        return wrk_stats(f"http://127.0.0.1:{port}/execute", conns, script)
    finally:
        os.unlink(script)


def many_runs(port, n, clients=8):
    body = json.dumps({"request": {"cmd": "true"}})
    hdr = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for _ in range(k):
            conn.request("POST", "/execute", body=body, headers=hdr)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise SystemExit(f"bad answer {r.status}: {data[:200]!r}")
        conn.close()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(worker, [n // clients] * clients))


def burst_client(port, start, seconds, out):
    # One client of the burst (a process of its own: no GIL shared with the others); the
    # CLOCK_MONOTONIC time of each answer.
    lean = LeanClient(port, {"cmd": "true"})
    while time.monotonic() < start:
        time.sleep(0.0005)
    done = []
    while time.monotonic() < start + seconds:
        lean.execute_once()
        done.append(time.monotonic())
    lean.close()
    out.put(done)


def burst_from_idle(clients=8, seconds=3.0, step=0.1):
    """A fresh server (its pool at the floor of the default configuration) meets `clients`
    clients at once: exec/s in each `step` from the start, the steady rate (the median step of
    the last two seconds),
    and when the burst reached 90% of it (the first step from which the rate over the next
    200 ms stays there)."""
    d = Daemon().start()
    try:
        time.sleep(1.5)     # the floor built, nothing else
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        start = time.monotonic() + 0.5
        procs = [ctx.Process(target=burst_client, args=(d.port, start, seconds, out)) for _ in range(clients)]
        for p in procs:
            p.start()
        times = sorted(t - start for _ in procs for t in out.get(timeout=seconds + 30))
        for p in procs:
            p.join()
        pool = pool_line(d)
    finally:
        d.stop()
    steps = int(seconds / step)
    rate = [sum(1 for t in times if k * step <= t < (k + 1) * step) / step for k in range(steps)]
    steady = statistics.median(rate[-int(2 / step):])
    reached = next((k * step for k in range(steps - 1) if (rate[k] + rate[k + 1]) / 2 >= 0.9 * steady), None)
    return rate, steady, reached, times[0] if times else None, pool


def pool_line(d):
    # What the pool did, as GET /queue/status reports it (this server's "pool" object).
    conn = http.client.HTTPConnection("127.0.0.1", d.port)
    conn.request("GET", "/queue/status", headers={"Authorization": f"Bearer {MASTER}"})
    st = json.loads(conn.getresponse().read())
    conn.close()
    return st.get("pool", {})


def main():
    rows = []
    d = Daemon().start()
    try:
        time.sleep(0.5)
        idle = rss_kb(d.pid())
        # Each isol8 run beside a bare one, interleaved: bare python's own p50 moves by a
        # millisecond from one block of runs to the next on this machine.
        i_sh, (b_sh,), (d_sh,), h_sh = side_by_side(d.port, {"cmd": "true"}, [["/usr/bin/bash", "-c", "true"]])
        with tempfile.NamedTemporaryFile("w", suffix=".py") as main_py:
            main_py.write("pass\n")
            main_py.flush()
            # isol8 runs python from /sandbox/main.py (upstream's way): the same from a file, bare.
            i_py, (b_py, b_pyf), (d_py, d_pyf), h_py = side_by_side(d.port, {"code": "pass", "runtime": "python"},
                                                              [["/usr/bin/python3", "-c", "pass"],
                                                               ["/usr/bin/python3", main_py.name]])
        rows.append(("bare `bash -c true` / isol8 `cmd: true`, one client, p50 (run by run: median difference)",
                     f"{pct(b_sh, 50):.2f} / {pct(i_sh, 50):.2f} ms", f"+{pct(i_sh, 50) - pct(b_sh, 50):.2f} ms ({d_sh:+.2f} ms)"))
        rows.append(("bare `python3 -c pass` / isol8 python `pass`, one client, p50 (run by run)",
                     f"{pct(b_py, 50):.2f} / {pct(i_py, 50):.2f} ms", f"+{pct(i_py, 50) - pct(b_py, 50):.2f} ms ({d_py:+.2f} ms)"))
        rows.append(("bare `python3 main.py` / isol8 python `pass`, one client, p50 (run by run)",
                     f"{pct(b_pyf, 50):.2f} / {pct(i_py, 50):.2f} ms", f"+{pct(i_py, 50) - pct(b_pyf, 50):.2f} ms ({d_pyf:+.2f} ms)"))
        rows.append(("the same two runs through CPython's http.client (its own parsing included), p50",
                     f"{pct(h_sh, 50):.2f} / {pct(h_py, 50):.2f} ms",
                     f"+{pct(h_sh, 50) - pct(b_sh, 50):.2f} / +{pct(h_py, 50) - pct(b_pyf, 50):.2f} ms over bare"))
        # In rounds, each in the other order (1, 8, 32 clients, then 32, 8, 1): this machine
        # drifts by a third within minutes, and in one fixed order the last row paid for it.
        loads = {1: [], 8: [], 32: []}
        for i in range(ROUNDS):
            for c in (1, 8, 32) if i % 2 == 0 else (32, 8, 1):
                # The last phase's connections were cut with runs in flight: let those runs end and
                # give their slots back, or the next phase's first burst meets a full queue (429).
                time.sleep(1)
                loads[c].append(wrk_execute(d.port, c, '{"request":{"cmd":"true"}}'))
        for c, runs in loads.items():
            rps, p50, p99 = (statistics.median(r[k] for r in runs) for k in range(3))
            rows.append((f"`cmd: true`, {c} client(s), default configuration, median of {len(runs)} rounds",
                         f"{rps:,.0f} exec/s ({', '.join(f'{r[0]:,.0f}' for r in runs)})",
                         f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"))
        p = pool_line(d)
        if p:
            rows.append(("pool after the load: sandboxes built / cleaned for reuse / destroyed",
                         f"{p.get('built')} / {p.get('cleaned')} / {p.get('destroyed')}",
                         f"CPU per build {p.get('buildMs')} ms, per clean {p.get('cleanMs')} ms; demand seen {p.get('demand')}"))
        rows.append(("daemon RSS, idle", f"{idle / 1024:.1f} MiB", ""))
        rate, steady, reached, first, bp = burst_from_idle()
        rows.append(("burst from idle: 8 clients at once against a fresh server, exec/s per 100 ms from the start",
                     " ".join(f"{r:.0f}" for r in rate[:10]) + " ...",
                     f"steady (median 100 ms of the last two seconds) {steady:.0f} exec/s; 90% of it from {reached * 1000:.0f} ms"
                     if reached is not None else f"steady {steady:.0f} exec/s; never reached 90% of it"))
        rows.append(("burst from idle: first answer; sandboxes built / cleaned / destroyed over the burst",
                     f"{first * 1000:.1f} ms", f"{bp.get('built')} / {bp.get('cleaned')} / {bp.get('destroyed')}"))
        if RUNS:
            time.sleep(2)
            before = rss_kb(d.pid())
            t0 = time.time()
            many_runs(d.port, RUNS)
            time.sleep(1)
            after = rss_kb(d.pid())
            rows.append((f"daemon RSS before / after {RUNS:,} runs (8 clients, {time.time() - t0:.0f} s)",
                         f"{before / 1024:.1f} / {after / 1024:.1f} MiB", f"{(after - before):+d} KiB"))
    finally:
        d.stop()
    print(f"binary: {os.environ.get('ISOL8_BIN', 'build/src/isol8')}")
    print_table(rows)


if __name__ == "__main__":
    main()
