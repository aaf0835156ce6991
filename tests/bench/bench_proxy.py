#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Network "filtered": what the daemon's proxy costs, against the same transfer direct on
loopback, in one run (issue 15's targets: under 20% of throughput, under 1 ms per request).

  a 100 MiB download through a CONNECT tunnel (curl in the sandbox, `-p`) vs curl on the host
  N small HTTP requests, one connection each, from Python in the sandbox through the proxy vs
  the same program on the host straight to the server

BENCH_PROXY_MB and BENCH_PROXY_REQUESTS change the sizes; prints a Markdown table.
"""

import fcntl
import os
import socket
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from bench import print_table  # noqa: E402

MB = int(os.environ.get("BENCH_PROXY_MB", "100"))
REQUESTS = int(os.environ.get("BENCH_PROXY_REQUESTS", "500"))
ROUNDS = 3
CHUNK = b"z" * (1 << 20)


def bulk_server(addr):
    """Answers every request with MB MiB of body, as fast as the reader takes it."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(64)

    def serve(c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                b = c.recv(4096)
                if not b:
                    return
                data += b
            if b" /small" in data.split(b"\r\n")[0]:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                return
            c.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {MB << 20}\r\nConnection: close\r\n\r\n".encode())
            for _ in range(MB):
                c.sendall(CHUNK)
        except OSError:
            pass
        finally:
            c.close()

    def accept():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return s, s.getsockname()[1]


SMALL = r"""
import socket, sys, time
host, port, n, proxy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "proxy"
times = []
for i in range(n):
    t0 = time.perf_counter()
    if proxy:
        s = socket.create_connection(("127.0.0.1", 8118))
        s.sendall(f"GET http://{host}:{port}/small HTTP/1.1\r\n\r\n".encode())
    else:
        s = socket.create_connection(("127.0.0.2", port))
        s.sendall(f"GET /small HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    assert data.endswith(b"ok\n"), data
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.3f}")
"""


def splice_relay(port):
    """The floor of any relay in user space: a listener on 127.0.0.1 whose every connection is
    joined to the bulk server by two blocking threads that only splice() through a 256 KiB pipe
    (no parsing, no limits, no event loop). Run beside the tunnel so its cost reads against it."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)

    def one_way(src, dst):
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 18)
            while (n := os.splice(src.fileno(), w, 1 << 18)) > 0:
                while n > 0:
                    n -= os.splice(r, dst.fileno(), n)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            os.close(r)
            os.close(w)

    def accept():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.2", port))
            threading.Thread(target=one_way, args=(c, u), daemon=True).start()
            threading.Thread(target=one_way, args=(u, c), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return lst, lst.getsockname()[1]


def curl_speed(url):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}", "--noproxy", "*", url],
                         capture_output=True, text=True, check=True).stdout
    return float(out) / (1 << 20)


def main():
    srv, port = bulk_server("127.0.0.2")
    relay, relay_port = splice_relay(port)
    cfg = {"security": {"allowedNetworks": ["none", "filtered"]},
           "network": {"allowedAddresses": ["127.0.0.2/32"], "allowedPorts": [port], "maxBytes": "2g"},
           "limits": {"maxTimeoutMs": 600000}}
    d = isol8test.Daemon(config=cfg, files={"/etc/hosts": "127.0.0.1 localhost\n127.0.0.2 bulk.test\n"}).start()
    rows = []
    try:
        url = f"http://bulk.test:{port}/big"
        tunnel, direct, floor = [], [], []
        for _ in range(ROUNDS):
            res = d.execute({"cmd": f"curl -sS -p -o /dev/null -w '%{{speed_download}}' {url}", "timeoutMs": 300000},
                            {"network": "filtered", "timeoutMs": 300000})
            tunnel.append(float(res["stdout"]) / (1 << 20))
            direct.append(curl_speed(f"http://127.0.0.2:{port}/big"))
            floor.append(curl_speed(f"http://127.0.0.1:{relay_port}/big"))
        t, dd, f = statistics.median(tunnel), statistics.median(direct), statistics.median(floor)
        rows.append((f"{MB} MiB download, curl: through a CONNECT tunnel / direct (median of {ROUNDS})",
                     f"{t:,.0f} / {dd:,.0f} MiB/s", f"{(1 - t / dd) * 100:+.1f}% cost" if dd else ""))
        rows.append(("the same download through a bare splice() relay on the host (user-space floor) / direct",
                     f"{f:,.0f} / {dd:,.0f} MiB/s", f"{(1 - f / dd) * 100:+.1f}% cost" if dd else ""))

        via, straight = [], []
        for _ in range(ROUNDS):
            res = d.execute({"cmd": f"python3 /sandbox/small.py bulk.test {port} {REQUESTS} proxy",
                           "files": {"small.py": SMALL}, "timeoutMs": 300000}, {"network": "filtered", "timeoutMs": 300000})
            via.append(float(res["stdout"]))
            out = subprocess.run(["/usr/bin/python3", "-c", SMALL, "bulk.test", str(port), str(REQUESTS), "direct"],
                                 capture_output=True, text=True, check=True).stdout
            straight.append(float(out))
        v, s = statistics.median(via), statistics.median(straight)
        rows.append((f"small HTTP request, one connection each, p50 of {REQUESTS}: through the proxy / direct",
                     f"{v:.3f} / {s:.3f} ms", f"+{v - s:.3f} ms"))
    finally:
        d.stop()
        srv.close()
        relay.close()
    print(f"binary: {isol8test.ISOL8}")
    print_table(rows)


if __name__ == "__main__":
    main()
