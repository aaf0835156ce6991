#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Measures isol8 against bare process start and bwrap, in one run, and prints a Markdown table.

  /health throughput and p99 with wrk (keep-alive)
  /execute sequential p50/p99 over keep-alive vs a bare fork+exec, for `bash -c true` and python
  /execute throughput with 1 and 8 concurrent clients (wrk) vs spawning bwrap per run
"""

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
from isol8test import MASTER, Daemon  # noqa: E402

SEQ = int(os.environ.get("BENCH_SEQ", "300"))
DURATION = os.environ.get("BENCH_DURATION", "8s")


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def bare(argv, n=SEQ):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, {})
        os.waitpid(pid, 0)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def sequential(port, request, n=SEQ):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"request": request})
    hdr = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        conn.request("POST", "/execute", body=body, headers=hdr)
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200 or json.loads(data)["exitCode"] != 0:
            raise SystemExit(f"bad answer: {r.status} {data[:200]}")
        if i >= 20:  # warm-up
            times.append(dt)
    conn.close()
    return times


def wrk(url, conns, script=None, threads=2):
    cmd = ["wrk", "--latency", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{DURATION}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw errors: {out}")
    return rps, p99


def bwrap_throughput(conns, seconds=5):
    argv = ["bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--unshare-all", "--die-with-parent", "--new-session", "/usr/bin/bash", "-c", "true"]
    deadline = time.time() + seconds

    def worker(_):
        n = 0
        while time.time() < deadline:
            subprocess.run(argv, check=True)
            n += 1
        return n
    t0 = time.time()
    with ThreadPoolExecutor(conns) as ex:
        total = sum(ex.map(worker, range(conns)))
    return total / (time.time() - t0)


def main():
    rows = []
    d = Daemon(config={"maxConcurrent": 16, "poolSize": {"clean": 8, "dirty": 8}, "queue": {"maxSize": 1000}}).start()
    try:
        time.sleep(1)  # let the pool fill
        url = f"http://127.0.0.1:{d.port}"
        rps, p99 = wrk(url + "/health", 16)
        rows.append(("`GET /health`, wrk 16 connections, keep-alive", f"{rps:,.0f} req/s", f"p99 {p99:.2f} ms"))

        b_bash = bare(["/usr/bin/bash", "-c", "true"])
        i_bash = sequential(d.port, {"cmd": "true"})
        rows.append(("bare `bash -c true` (posix_spawn+wait)", f"p50 {pct(b_bash, 50):.2f} ms", f"p99 {pct(b_bash, 99):.2f} ms"))
        rows.append(("isol8 `/execute` `cmd: true`, sequential keep-alive", f"p50 {pct(i_bash, 50):.2f} ms", f"p99 {pct(i_bash, 99):.2f} ms"))
        b_py = bare(["/usr/bin/python3", "-c", "pass"])
        i_py = sequential(d.port, {"code": "pass", "runtime": "python"})
        rows.append(("bare `python3 -c pass`", f"p50 {pct(b_py, 50):.2f} ms", f"p99 {pct(b_py, 99):.2f} ms"))
        rows.append(("isol8 `/execute` python `pass`, sequential", f"p50 {pct(i_py, 50):.2f} ms", f"p99 {pct(i_py, 99):.2f} ms"))

        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write('wrk.method = "POST"\nwrk.body = \'{"request":{"cmd":"true"}}\'\n'
                    f'wrk.headers["Authorization"] = "Bearer {MASTER}"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
            script = f.name
        for c in (1, 8):
            rps, p99 = wrk(url + "/execute", c, script)
            rows.append((f"isol8 `/execute` `cmd: true`, {c} concurrent client(s)", f"{rps:,.0f} exec/s", f"p99 {p99:.2f} ms"))
        os.unlink(script)
        if shutil.which("bwrap"):
            for c in (1, 8):
                rows.append((f"`bwrap ... bash -c true` spawned per run, {c} concurrent", f"{bwrap_throughput(c):,.0f} runs/s", ""))
    finally:
        d.stop()

    print(f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"kernel {os.uname().release}; {time.strftime('%Y-%m-%d')}\n")
    print("| measurement | result | latency |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
