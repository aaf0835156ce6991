#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Measures isol8 against bare process start and bwrap, in one run, and prints a Markdown table.

  /health throughput and p99 with wrk (keep-alive)
  /execute sequential p50/p99 over keep-alive vs a bare fork+exec, for `bash -c true` and python
  /execute throughput with 1 and 8 concurrent clients (wrk) vs spawning bwrap per run
"""

import asyncio
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
from isol8test import MASTER, Daemon, raw_post  # noqa: E402

SEQ = int(os.environ.get("BENCH_SEQ", "300"))
DURATION = os.environ.get("BENCH_DURATION", "8s")


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


# The environment a run gets (src/core/execution.c, build_env()): a bare run with the same one
# does the same work in the program (LANG=C.UTF-8 alone makes bash open 28 locale files), so
# the difference is isol8's own.
SANDBOX_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
    "TMPDIR": "/tmp", "LANG": "C.UTF-8", "USER": "sandbox", "HOSTNAME": "sandbox",
    "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
}


def spawn_once(argv, env):
    """The time (ms) of one posix_spawn + waitpid of argv."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env)
    os.waitpid(pid, 0)
    return (time.perf_counter() - t0) * 1000


def bare(argv, n=SEQ, env=None):
    """Times of n posix_spawn + waitpid of argv (the environment: `env`, else an empty one)."""
    return [spawn_once(argv, env if env is not None else {}) for _ in range(n)]


def sequential(port, request, n=SEQ, session=None):
    """The times of n runs over one keep-alive connection (in a session if given), after 20 warm-up runs."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"request": request, **({"sessionId": session} if session else {})})
    times = [execute_once(conn, body) for _ in range(n + 20)][20:]   # after the warm-up
    conn.close()
    return times


def execute_once(conn, body):
    """The time (ms) of one POST /execute of body over conn; anything but exit 0 ends the bench."""
    t0 = time.perf_counter()
    conn.request("POST", "/execute", body=body, headers={"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    dt = (time.perf_counter() - t0) * 1000
    if r.status != 200 or json.loads(data)["exitCode"] != 0:
        raise SystemExit(f"bad answer: {r.status} {data[:200]}")
    return dt


class LeanClient:
    """POST /execute over one keep-alive socket the way a client written in C or Go does it: the
    request's bytes made once, the answer read up to its Content-Length. CPython's http.client
    parses each answer's head with the email package, which cost 0.3 ms per request here: that
    is the client's time, not the server's."""

    def __init__(self, port, request):
        import socket
        self.req = raw_post("/execute", json.dumps({"request": request}).encode())
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def execute_once(self):
        """The time (ms) of one request to its whole answer; anything but 200 and exit 0 ends the
        bench (checked after the clock stops)."""
        t0 = time.perf_counter()
        self.sock.sendall(self.req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if not m:
            raise SystemExit(f"an answer without Content-Length: {head[:200]}")
        while len(body) < int(m.group(1)):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            body += chunk
        dt = (time.perf_counter() - t0) * 1000
        if not head.startswith(b"HTTP/1.1 200 ") or json.loads(body)["exitCode"] != 0:
            raise SystemExit(f"bad answer: {head[:100]} {body[:200]}")
        return dt

    def close(self):
        self.sock.close()


def side_by_side(port, request, bares, n=SEQ):
    """One client: n runs of `request` over keep-alive (LeanClient), each beside one bare
    posix_spawn + wait of every argv in `bares` (with the run's environment) and one more run of
    the request through http.client, interleaved run by run so that the machine's drift hits all
    alike (after 20 warm-up rounds; each round in its own order). Returns (isol8 times, [bare times per argv], median of the
    per-round differences isol8 - bare per argv, isol8 times through http.client), in ms."""
    import random
    lean = LeanClient(port, request)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"request": request})
    mine, theirs, through_http_client = [], [[] for _ in bares], []
    # In a fixed order whatever comes right after an isol8 run shares the CPU with its
    # aftermath (the daemon's record, the sandbox's clean): each round takes its own order.
    tasks = [lambda: lean.execute_once(), lambda: execute_once(conn, body)] + \
            [(lambda argv: lambda: spawn_once(argv, SANDBOX_ENV))(argv) for argv in bares]
    order = random.Random(8).sample
    for i in range(n + 20):
        t = [0.0] * len(tasks)
        for k in order(range(len(tasks)), len(tasks)):
            t[k] = tasks[k]()
        if i >= 20:
            mine.append(t[0])
            through_http_client.append(t[1])
            for k in range(len(bares)):
                theirs[k].append(t[2 + k])
    lean.close()
    conn.close()
    diffs = [statistics.median(a - b for a, b in zip(mine, t)) for t in theirs]
    return mine, theirs, diffs, through_http_client


def post_script(body):
    """A wrk Lua script that POSTs body with the master key; the caller removes the file."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f"wrk.method = \"POST\"\nwrk.body = '{body}'\n"
                f'wrk.headers["Authorization"] = "Bearer {MASTER}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
        return f.name


def wrk_stats(url, conns, script=None, threads=2):
    """Requests/s, p50 and p99 (ms) of a wrk run; any non-2xx answer ends the bench."""
    cmd = ["wrk", "--latency", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{DURATION}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk saw errors: {out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rps, lat(50), lat(99)


def wrk(url, conns, script=None, threads=2):
    rps, _, p99 = wrk_stats(url, conns, script, threads)
    return rps, p99


def sse_ttfb(port, code):
    import socket
    body = json.dumps({"request": {"code": code, "runtime": "python"}}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    s.sendall(raw_post("/execute/stream", body, close=True))
    data, dt = b"", float("nan")
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if dt != dt and b'"type":"stdout"' in data:
            dt = (time.perf_counter() - t0) * 1000
    s.close()
    return dt


async def ws_ttfb(port, code):
    import websockets
    async with websockets.connect(f"ws://127.0.0.1:{port}/execute/ws", extra_headers={"Authorization": f"Bearer {MASTER}"}) as ws:
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "execute", "request": {"code": code, "runtime": "python"}}))
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "stdout":
                dt = (time.perf_counter() - t0) * 1000
                break
        try:
            async for _ in ws:
                pass
        except Exception:
            pass
        return dt


async def ws_ttfb_many(port, code, n):
    return [await ws_ttfb(port, code) for _ in range(n)]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])


async def ws_fifty(d):
    import websockets
    before = rss_kb(d.pid())
    peak = before
    count = 0
    code = "import time\nfor i in range(300):\n    print('line', i, 'x' * 100, flush=True)\n    time.sleep(0.01)"

    async def one():
        nonlocal count
        async with websockets.connect(f"ws://127.0.0.1:{d.port}/execute/ws", extra_headers={"Authorization": f"Bearer {MASTER}"},
                                      max_size=None) as ws:
            await ws.send(json.dumps({"type": "execute", "request": {"code": code, "runtime": "python", "timeoutMs": 60000}}))
            try:
                async for _ in ws:
                    count += 1
            except Exception:
                pass

    async def watch(task):
        nonlocal peak
        while not task.done():
            peak = max(peak, rss_kb(d.pid()))
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(asyncio.gather(*[one() for _ in range(50)]))
    await watch(task)
    await task
    return before, peak, count


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

        b_bash = bare(["/usr/bin/bash", "-c", "true"], env=SANDBOX_ENV)
        i_bash = sequential(d.port, {"cmd": "true"})
        rows.append(("bare `bash -c true` (posix_spawn+wait)", f"p50 {pct(b_bash, 50):.2f} ms", f"p99 {pct(b_bash, 99):.2f} ms"))
        rows.append(("isol8 `/execute` `cmd: true`, sequential keep-alive", f"p50 {pct(i_bash, 50):.2f} ms", f"p99 {pct(i_bash, 99):.2f} ms"))
        b_py = bare(["/usr/bin/python3", "-c", "pass"], env=SANDBOX_ENV)
        i_py = sequential(d.port, {"code": "pass", "runtime": "python"})
        rows.append(("bare `python3 -c pass`", f"p50 {pct(b_py, 50):.2f} ms", f"p99 {pct(b_py, 99):.2f} ms"))
        rows.append(("isol8 `/execute` python `pass`, sequential", f"p50 {pct(i_py, 50):.2f} ms", f"p99 {pct(i_py, 99):.2f} ms"))

        for label, body in (("`cmd: true`", '{"request":{"cmd":"true"}}'),
                            ("python `pass`", '{"request":{"code":"pass","runtime":"python"}}')):
            script = post_script(body)
            for c in (1, 8, 32):
                rps, p99 = wrk(url + "/execute", c, script)
                rows.append((f"isol8 `/execute` {label}, {c} concurrent client(s)", f"{rps:,.0f} exec/s", f"p99 {p99:.2f} ms"))
            os.unlink(script)

        # Time to first byte of a streamed print, against the buffered run of the same program.
        code = "print('first', flush=True)"
        sse = [sse_ttfb(d.port, code) for _ in range(40)]
        ws = asyncio.run(ws_ttfb_many(d.port, code, 40))
        buf = sequential(d.port, {"code": code, "runtime": "python"}, n=40)
        rows.append(("`/execute` of a python `print`, whole answer", f"p50 {pct(buf, 50):.2f} ms", f"p99 {pct(buf, 99):.2f} ms"))
        rows.append(("`/execute/stream` (SSE), first output event", f"p50 {pct(sse, 50):.2f} ms", f"p99 {pct(sse, 99):.2f} ms"))
        rows.append(("`/execute/ws`, first output event after the execute message", f"p50 {pct(ws, 50):.2f} ms", f"p99 {pct(ws, 99):.2f} ms"))
        if shutil.which("bwrap"):
            for c in (1, 8):
                rows.append((f"`bwrap ... bash -c true` spawned per run, {c} concurrent", f"{bwrap_throughput(c):,.0f} runs/s", ""))
    finally:
        d.stop()

    # The daemon's memory while 50 WebSocket clients stream output at once.
    d = Daemon(config={"maxConcurrent": 50, "poolSize": {"clean": 8, "dirty": 8}, "queue": {"maxSize": 200}}).start()
    try:
        time.sleep(1)
        before, peak, n_events = asyncio.run(ws_fifty(d))
        rows.append(("daemon RSS, idle", f"{before / 1024:.1f} MiB", ""))
        rows.append(("daemon RSS, peak while 50 WebSocket clients stream", f"{peak / 1024:.1f} MiB", f"{n_events} events received"))
    finally:
        d.stop()

    print(f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"kernel {os.uname().release}; {time.strftime('%Y-%m-%d')}\n")
    print_table(rows)


def print_table(rows):
    """The Markdown table every benchmark here prints."""
    print("| measurement | result | latency |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
