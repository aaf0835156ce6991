#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sessions and DB keys, measured in one run; prints Markdown.

  run in an existing session vs an ephemeral run (sequential p50/p99, keep-alive)
  daemon memory per idle session with BENCH_SESSIONS (500) sessions, and the whole machine's
  cost per session (daemon + the sessions' sandbox processes), extrapolated to 24 GiB
  authenticated GET /queue/status with a DB key on SQLite, PostgreSQL and MariaDB, cache off and on
"""

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import dbservers  # noqa: E402
from isol8test import MASTER, Daemon, sandbox_processes  # noqa: E402

N = int(os.environ.get("BENCH_SEQ", "200"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "500"))
DURATION = os.environ.get("BENCH_DURATION", "5s")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def seq(port, body, n=N):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    hdr = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}
    data = json.dumps(body)
    out = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        conn.request("POST", "/execute", body=data, headers=hdr)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"status {r.status}")
        if i >= 10:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return int([l for l in f if l.startswith("Pss:")][0].split()[1])
    except OSError:
        return 0


def wrk(url, key, conns=8):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n')
        script = f.name
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{DURATION}", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    if "Non-2xx" in out:
        raise SystemExit(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return rps, float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]


def main():
    rows = []
    d = Daemon(config={"poolSize": 4, "sessions": {"maxTotal": SESSIONS + 10, "maxPerTenant": SESSIONS + 10},
                       "maxConcurrent": 16}).start()
    try:
        time.sleep(0.5)
        d.post("/execute", {"request": {"cmd": "true"}, "sessionId": "bench"})
        eph = seq(d.port, {"request": {"cmd": "true"}})
        ses = seq(d.port, {"request": {"cmd": "true"}, "sessionId": "bench"})
        rows.append(("`/execute` `cmd: true`, ephemeral (pool)", f"p50 {pct(eph, 50):.2f} ms", f"p99 {pct(eph, 99):.2f} ms"))
        rows.append(("`/execute` `cmd: true`, existing session", f"p50 {pct(ses, 50):.2f} ms", f"p99 {pct(ses, 99):.2f} ms"))

        d.post("/cleanup")
        time.sleep(1)
        base_rss = rss_kb(d.pid())
        base_procs = set(sandbox_processes())
        t0 = time.time()
        for i in range(SESSIONS):
            r = d.post("/execute", {"request": {"cmd": "true"}, "sessionId": f"idle-{i}"})
            if r.status != 200:
                raise SystemExit(f"session {i}: {r}")
        t_create = time.time() - t0
        time.sleep(1)
        rss = rss_kb(d.pid())
        procs = [p for p in sandbox_processes() if p not in base_procs]
        pss = sum(pss_kb(p) for p in procs)
        per_daemon = (rss - base_rss) / SESSIONS
        per_total = per_daemon + pss / max(len(procs), 1)
        rows.append((f"{SESSIONS} idle sessions created", f"{t_create:.1f} s", f"{t_create * 1000 / SESSIONS:.1f} ms each"))
        rows.append(("daemon memory per idle session (RSS delta)", f"{per_daemon:.1f} KiB", ""))
        rows.append(("sandbox init per idle session (PSS, user space)", f"{pss / max(len(procs), 1):.1f} KiB", f"{len(procs)} processes"))
        cap = 24 * 1024 * 1024 / max(per_total, 1)
        rows.append(("idle sessions one 24 GiB machine could hold (user-space memory only)", f"~{cap:,.0f}",
                     "kernel objects per sandbox (namespaces, mounts, cgroups) not counted"))
        d.post("/cleanup")
    finally:
        d.stop()

    servers = [("SQLite", None)]
    if dbservers.postgres_available():
        servers.append(("PostgreSQL 15", dbservers.Postgres().init().start()))
    if dbservers.mariadb_available():
        servers.append(("MariaDB", dbservers.MariaDB().init().start()))
    tmp = tempfile.TemporaryDirectory()
    try:
        for name, srv in servers:
            url = srv.url() if srv else os.path.join(tmp.name, "auth.db")
            for cache in (0, 5000):
                dm = Daemon(config={"auth": {"cacheTtlMs": cache}}, args=["--auth-db", url]).start()
                try:
                    key = dm.post("/auth/keys", {"name": "bench"}).json()["key"]
                    rps, p99 = wrk(f"http://127.0.0.1:{dm.port}/queue/status", key)
                    rows.append((f"`GET /queue/status` with a DB key, {name}, cache {'on' if cache else 'off'}",
                                 f"{rps:,.0f} req/s", f"p99 {p99:.2f} ms"))
                finally:
                    dm.stop()
    finally:
        for _, srv in servers:
            if srv:
                srv.destroy()

    print("| measurement | result | detail |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
