#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Attacks a hostile tenant makes on the daemon itself (issue 12): reading the daemon through its
sandbox's init, taking the host's memory or the daemon's attention. Each test proves a bound
holds with small sizes and short times."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon, DaemonTestCase, MASTER  # noqa: E402

SECRET_KEY = "master-key-SECRET-c0ffee-42"


def init_pids(daemon_pid):
    """The sandbox inits that are children of the daemon."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == daemon_pid:
            out.append(int(p))
    return out


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class InitIsNotTheDaemon(unittest.TestCase):
    """Critical: the init of every sandbox is a fresh program, not a copy of the daemon."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        db = os.path.join(cls.tmp.name, "auth-SECRETDBNAME.db")
        cls.d = Daemon(key=SECRET_KEY, config={"poolSize": 2}, args=["--auth-db", db],
                       env={"ISOL8_SECRET_ENV": "env-SECRET-value"}).start()

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0
        cls.tmp.cleanup()

    def test_nothing_of_the_daemon_inside(self):
        code = ("for f in /proc/*/cmdline /proc/*/environ; do cat $f 2>/dev/null | tr '\\0' ' '; echo; done; "
                "ls /proc | grep -x 1 || echo no-pid-1")
        res = self.d.execute({"code": code, "runtime": "bash"}, key=SECRET_KEY)
        self.assertNotIn("SECRET", res["stdout"])
        self.assertNotIn("serve", res["stdout"])
        self.assertIn("no-pid-1", res["stdout"])

    def test_init_is_a_fresh_small_program(self):
        # Bodies of 9 MiB in the daemon's heap, then new sessions: their inits must not carry them.
        blob = "x" * (9 << 20)
        for i in range(3):
            r = self.d.post("/execute", {"request": {"code": "true", "runtime": "bash", "stdin": blob},
                                         "sessionId": f"big-{i}"}, key=SECRET_KEY)
            self.assertEqual(r.status, 200, r)
        inits = init_pids(self.d.pid())
        self.assertGreaterEqual(len(inits), 3)
        for pid in inits:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            self.assertEqual(argv[0], b"isol8-sandbox-init", argv)
            self.assertNotIn(SECRET_KEY.encode(), b" ".join(argv))
            with open(f"/proc/{pid}/environ", "rb") as f:
                self.assertEqual(f.read(), b"")
            fds = {int(x): os.readlink(f"/proc/{pid}/fd/{x}") for x in os.listdir(f"/proc/{pid}/fd")}
            self.assertEqual(sorted(fds), [0, 1, 2, 3, 4], fds)
            self.assertEqual({fds[0], fds[1], fds[2]}, {"/dev/null"})
            self.assertTrue(fds[3].startswith("socket:"), fds)
            # A copy of the daemon would hold its heap (27 MiB of bodies went through it).
            self.assertLess(vm_rss_kib(pid), 8 << 10, pid)
        for i in range(3):
            self.d.request("DELETE", f"/session/big-{i}", key=SECRET_KEY)

    def test_stolen_nothing_works_from_outside(self):
        # Whatever a program printed, the master key was not among it (see above); the key still
        # works only for its holder.
        self.assertEqual(self.d.post("/cleanup", key="isol8-sandbox-init").status, 403)


class DatabaseRefusesConnections(unittest.TestCase):
    """A pooled init once held the database library's socket and the daemon aborted about a
    second after start while MariaDB refused connections."""

    def test_daemon_keeps_running(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()   # nothing listens: every connection is refused
        d = Daemon(config={"poolSize": 2, "auth": {"timeoutMs": 500}},
                   args=["--auth-db", f"mysql://isol8:pw@127.0.0.1:{port}/isol8"]).start()
        try:
            time.sleep(2.5)
            self.assertIsNone(d.proc.poll(), d.stderr_text())
            r = d.post("/execute", {"request": {"code": "echo master", "runtime": "bash"}})
            self.assertEqual((r.status, r.json()["stdout"]), (200, "master"))
            r = d.post("/execute", {"request": {"code": "true", "runtime": "bash"}},
                       key="isol8_" + "ab" * 32)
            self.assertEqual(r.status, 503, r)
            self.assertIsNone(d.proc.poll())
        finally:
            self.assertEqual(d.stop(), 0, d.stderr_text()[-2000:])


def raw_http(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    except socket.timeout:
        pass
    s.close()
    return out


class Http(DaemonTestCase):
    config = {"poolSize": 1, "http": {"requestHeadTimeoutMs": 1500, "maxConnections": 40, "maxConnectionsPerIp": 40}}

    def test_smuggling_heads_refused(self):
        body = b'{"request":{"cmd":"true"}}'
        inner = b"GET /queue/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode() + b"\r\n\r\n"
        heads = [
            # Content-Length and Transfer-Encoding: a request hidden in the body must never be served
            b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (MASTER.encode(), 5) + inner,
            # two different Content-Lengths
            b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
            b"Content-Length: 3\r\n\r\n" % (MASTER.encode(), len(body)) + body,
        ]
        for h in heads:
            out = raw_http(self.daemon.port, h)
            self.assertTrue(out.startswith(b"HTTP/1.1 400") or out == b"", out[:300])
            self.assertNotIn(b'"current"', out)   # the hidden or NUL-keyed request was not served
            self.assertEqual(out.count(b"HTTP/1.1"), min(1, len(out)), out[:500])
        self.assert_healthy()

    def test_slow_heads_cannot_keep_clients_out(self):
        # More slow connections than the server takes: the oldest ones make room, each has a
        # deadline for its head, and a client that sends a whole request is served at once.
        socks = []
        try:
            for _ in range(60):
                try:
                    s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=2)
                    s.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
                    socks.append(s)
                except OSError:
                    pass
            t0 = time.time()
            r = self.daemon.get("/health", key=None, timeout=5)
            self.assertEqual(r.status, 200)
            self.assertEqual(self.daemon.post("/execute", {"request": {"cmd": "echo in"}}, timeout=10).json()["stdout"], "in")
            self.assertLess(time.time() - t0, 5)
            # After the head deadline every slow connection has been closed by the server.
            time.sleep(2.5)
            closed = 0
            for s in socks:
                s.settimeout(0.5)
                try:
                    closed += s.recv(10) == b""
                except (ConnectionResetError, BrokenPipeError):
                    closed += 1
                except socket.timeout:
                    pass
            self.assertEqual(closed, len(socks))
        finally:
            for s in socks:
                s.close()

    def test_json_amplification_refused(self):
        for body in (b"[" + b"{}," * 200000 + b"{}]", b"[" + b"1," * 2500000 + b"1]"):
            t0 = time.time()
            r = self.daemon.request("POST", "/execute", raw=body, headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400)
            self.assertIn("more than", r.json()["error"])
        self.assert_healthy()


class Secrets(DaemonTestCase):
    config = {"poolSize": 1}

    def test_secrets_are_bounded(self):
        many = {f"S{i}": f"secret-{i:05d}" for i in range(65)}
        r = self.daemon.post("/execute", {"request": {"cmd": "true"}, "options": {"secrets": many}})
        self.assertEqual((r.status, r.json()["error"]), (400, "options.secrets: too many secrets (at most 64)"))
        r = self.daemon.post("/execute", {"request": {"cmd": "true"}, "options": {"secrets": {"A": "x" * 4097}}})
        self.assertEqual(r.status, 400)
        self.assertIn("longer than 4096 bytes", r.json()["error"])
        big = {f"S{i}": chr(65 + i % 26) * 4000 + str(i) for i in range(20)}
        r = self.daemon.post("/execute", {"request": {"cmd": "true"}, "options": {"secrets": big}})
        self.assertEqual(r.status, 400)
        self.assertIn("bytes of secrets in all", r.json()["error"])

    def test_masking_is_one_pass(self):
        # The worst case for a per-secret scan: 64 secrets that all start like the output.
        secrets = {f"S{i}": "a" * (i + 1) + "b" for i in range(64)}
        t0 = time.time()
        res = self.daemon.execute({"code": "print('a' * 700000 + 'b')", "runtime": "python"}, {"secrets": secrets})
        self.assertEqual(res["stdout"], "a" * (700000 - 64) + "***")
        # /health answers while such a run is masked (it is no longer a 50 s freeze)
        self.assertLess(time.time() - t0, 20)

    def test_secrets_masked_in_files(self):
        code = "printf 'k=%s\\n' \"$TOKEN\" > out.txt; cp out.txt /tmp/o2"
        res = self.daemon.execute({"code": code, "runtime": "bash", "outputPaths": ["out.txt"]},
                                  {"secrets": {"TOKEN": "tok-SECRET-123"}})
        import base64
        self.assertEqual(base64.b64decode(res["files"]["/sandbox/out.txt"]), b"k=***\n")
        r = self.daemon.post("/execute", {"request": {"code": code, "runtime": "bash"}, "sessionId": "sec-files",
                                          "options": {"secrets": {"TOKEN": "tok-SECRET-123"}}})
        self.assertEqual(r.status, 200, r)
        r = self.daemon.get("/file?sessionId=sec-files&path=/tmp/o2")
        self.assertEqual(base64.b64decode(r.json()["content"]), b"k=***\n")
        self.daemon.request("DELETE", "/session/sec-files")


class OutputFiles(DaemonTestCase):
    config = {"poolSize": 1, "limits": {"maxBodyBytes": 4 << 20}}

    def test_hard_links_refused_and_total_bounded(self):
        code = ("head -c 1000000 /dev/zero > big; for i in $(seq 1 20); do ln big l$i; done; "
                "for i in $(seq 1 5); do head -c 1000000 /dev/zero > f$i; done")
        paths = ["big"] + [f"l{i}" for i in range(1, 21)] + [f"f{i}" for i in range(1, 6)]
        res = self.daemon.execute({"code": code, "runtime": "bash", "outputPaths": paths})
        files = res["files"]
        self.assertFalse([p for p in files if "/l" in p or p.endswith("/big")], list(files))
        total = sum(len(v) for v in files.values())
        # base64 of at most 3/4 of the body limit
        self.assertLessEqual(total, 4 << 20)
        self.assertGreaterEqual(len(files), 2)


if __name__ == "__main__":
    isol8test.main()
