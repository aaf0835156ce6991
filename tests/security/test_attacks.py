#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Attacks a hostile tenant makes on the daemon itself (issue 12): reading the daemon through its
sandbox's init, taking the host's memory or the daemon's attention. Each test proves a bound
holds with small sizes and short times."""

import json
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
        # The pool refills meanwhile: wait until every child of the daemon has settled (a child
        # between clone and exec is the daemon for a few microseconds).
        deadline = time.time() + 5
        while time.time() < deadline:
            inits = init_pids(self.d.pid())
            try:
                # Set up: past its sync pipe (fd 5, closed once the daemon's worker has put it in
                # its cgroup) and its seccomp memfd's read.
                if all(open(f"/proc/{p}/cmdline", "rb").read().startswith(b"isol8-sandbox-init\0") and
                       sorted(int(x) for x in os.listdir(f"/proc/{p}/fd")) == [0, 1, 2, 3, 4] for p in inits):
                    break
            except OSError:
                pass
            time.sleep(0.1)
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
        # The crash came from a sandbox being spawned while a connection attempt was under way: a
        # large pool makes many spawns during the refused attempts.
        d = Daemon(config={"poolSize": {"clean": 16, "dirty": 0}, "maxConcurrent": 16, "auth": {"timeoutMs": 500}},
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
            out = isol8test.raw_exchange(self.daemon.port, h)
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


class WebSocketPeers(DaemonTestCase):
    config = {"poolSize": 1, "maxConcurrent": 2, "queue": {"timeoutMs": 30000}}

    def ws_connect(self):
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
        s.sendall(b"GET /execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Authorization: Bearer " + MASTER.encode() + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        self.assertIn(b"101", head.split(b"\r\n")[0])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return s

    @staticmethod
    def frame(payload, opcode=1):
        mask = b"\x01\x02\x03\x04"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        else:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        return head + mask + data

    def test_non_reading_clients_do_not_keep_slots(self):
        # Clients that start a flood and never read: their programs hit their timeout, and
        # their slots come back within a bounded time, whatever the clients do.
        socks = []
        try:
            for _ in range(2):
                s = self.ws_connect()
                s.sendall(self.frame(json.dumps({"type": "execute", "request": {"cmd": "yes", "timeoutMs": 1000}}).encode()))
                socks.append(s)
            time.sleep(0.5)
            self.assertEqual(self.daemon.get("/queue/status").json()["current"], 2)
            deadline = time.time() + 25
            while self.daemon.get("/queue/status").json()["current"] and time.time() < deadline:
                time.sleep(0.25)
            self.assertEqual(self.daemon.get("/queue/status").json()["current"], 0)
            self.assertEqual(self.daemon.execute({"code": "echo free", "runtime": "bash"})["stdout"], "free")
        finally:
            for s in socks:
                s.close()

    def test_ping_flood_does_not_grow_memory(self):
        # Pings from a peer that never reads pongs: its input stops being read once its queue
        # is full, and it is dropped; the daemon's memory stays bounded.
        def rss():
            return vm_rss_kib(self.daemon.pid())
        before = rss()
        s = self.ws_connect()
        pings = self.frame(b"x" * 125, opcode=9) * 500
        sent = 0
        s.settimeout(2)
        try:
            while sent < (300 << 20):
                s.sendall(pings)
                sent += len(pings)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
        self.assertLess(sent, 60 << 20)   # the server stopped taking input long before 300 MiB
        self.assertLess(rss() - before, 40 << 10)
        s.close()
        self.assert_healthy()


class Tenants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = Daemon(config={"poolSize": 1}, args=["--auth-db", os.path.join(cls.tmp.name, "k.db")]).start()

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0
        cls.tmp.cleanup()

    def key(self, **body):
        r = self.d.post("/auth/keys", dict(name="k", **body))
        self.assertEqual(r.status, 201, r)
        return r.json()["key"]

    def test_master_has_its_own_namespace(self):
        self.d.post("/execute", {"request": {"cmd": "echo op-secret > /sandbox/s"}, "sessionId": "ops"})
        default_key = self.key()                        # no tenantId: tenant "default"
        login = self.d.post("/auth/login", {}).json()["token"]
        for k in (default_key, login):
            self.assertEqual(self.d.get("/sessions", key=k).json()["sessions"], [])
            self.assertEqual(self.d.get("/file?sessionId=ops&path=s", key=k).status, 404)
            self.d.request("DELETE", "/session/ops", key=k)
        r = self.d.post("/execute", {"request": {"cmd": "cat /sandbox/s"}, "sessionId": "ops"}, key=default_key)
        self.assertNotIn("op-secret", r.json()["stdout"])
        self.d.request("DELETE", "/session/ops", key=default_key)
        self.assertEqual(self.d.get("/file?sessionId=ops&path=s").status, 200)
        r = self.d.post("/auth/keys", {"name": "x", "tenantId": "@master"})
        self.assertEqual(r.status, 400)

    def test_session_ids_are_per_tenant(self):
        a, b = self.key(tenantId="ta"), self.key(tenantId="tb")
        # b squats the id a will use: a still gets its own session
        self.assertEqual(self.d.post("/execute", {"request": {"cmd": "echo b > /sandbox/o"}, "sessionId": "job"}, key=b).status, 200)
        r = self.d.post("/execute", {"request": {"cmd": "cat /sandbox/o 2>/dev/null; echo a > /sandbox/o"},
                                     "sessionId": "job"}, key=a)
        self.assertEqual((r.status, r.json()["stdout"]), (200, ""))
        self.assertEqual(self.d.post("/execute", {"request": {"cmd": "cat /sandbox/o"}, "sessionId": "job"}, key=b).json()["stdout"], "b")
        self.assertEqual(self.d.post("/execute", {"request": {"cmd": "cat /sandbox/o"}, "sessionId": "job"}, key=a).json()["stdout"], "a")
        for k in (a, b):
            self.d.request("DELETE", "/session/job", key=k)


class QueueFairness(unittest.TestCase):
    def test_tenants_take_turns_and_share_the_queue(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = Daemon(config={"maxConcurrent": 1, "poolSize": 2, "queue": {"maxSize": 8}},
                       args=["--auth-db", os.path.join(tmp, "k.db")]).start()
            try:
                a = d.post("/auth/keys", {"name": "a", "tenantId": "qa"}).json()["key"]
                b = d.post("/auth/keys", {"name": "b", "tenantId": "qb"}).json()["key"]
                order = []
                def run(key, tag, sleep):
                    r = d.post("/execute", {"request": {"cmd": f"sleep {sleep}; echo {tag}"}}, key=key)
                    if r.status == 200:
                        order.append(r.json()["stdout"])
                    return r.status
                import concurrent.futures
                with concurrent.futures.ThreadPoolExecutor(6) as ex:
                    futs = [ex.submit(run, a, "a0", 0.6)]
                    time.sleep(0.3)
                    for i in (1, 2):
                        futs.append(ex.submit(run, a, f"a{i}", 0.2))
                        time.sleep(0.1)
                    # The default share is a quarter of the waiting places: a's third waiter is refused.
                    self.assertEqual(d.post("/execute", {"request": {"cmd": "true"}}, key=a).status, 429)
                    futs.append(ex.submit(run, b, "b1", 0.2))
                    self.assertEqual([f.result() for f in futs], [200] * 4)
                # b arrived after a's waiters but, not served yet, goes first: tenants take turns
                self.assertEqual(order, ["a0", "b1", "a1", "a2"])
            finally:
                self.assertEqual(d.stop(), 0)


class ReusedSandbox(DaemonTestCase):
    config = {"poolStrategy": "fast", "poolSize": {"clean": 1, "dirty": 1}, "maxConcurrent": 1}

    def test_fresh_network_and_pid_counter_after_a_clean(self):
        # A previous user's loopback traffic and process count must not show in the next run.
        noisy = ("python3 -c \"import socket; a=socket.socket(); a.bind(('127.0.0.1',0)); a.listen(); "
                 "b=socket.create_connection(a.getsockname()); c,_=a.accept(); b.sendall(b'x'*500000)\"; "
                 "for i in $(seq 1 40); do /bin/true; done")
        ids = []
        for _ in range(8):
            # what the run finds when it starts, then noise for the next user of the sandbox
            res = self.run_code("awk '/lo:/ {print $2}' /proc/net/dev; echo $$; " + noisy, "bash")
            rx, pid = res["stdout"].split("\n")[:2]
            self.assertEqual(int(rx), 0, res)
            self.assertLess(int(pid), 10, res)
            ids.append(res["containerId"])
        self.assertLess(len(set(ids)), len(ids), "the pool never reused a sandbox")


# What a run finds of the writable mounts (the first file it makes, the roots' metadata), then
# what it leaves for the next user of the sandbox: a file made and removed again in each
# (moves the inode counter), and on /sandbox, which it owns, a mode, times, an extended attribute
# and an inode flag. The next run must find the state the first one found, to the inode number.
MOUNT_PROBE = r"""
import fcntl, os, struct, sys
out = []
for d in ("/sandbox", "/tmp", "/dev/shm"):
    st = os.stat(d)
    fd = os.open(d, os.O_RDONLY)
    flags = struct.unpack("i", fcntl.ioctl(fd, 0x80086601, b"\0" * 8)[:4])[0]   # FS_IOC_GETFLAGS
    os.close(fd)
    p = os.path.join(d, "probe")
    open(p, "w").close()
    ino = os.stat(p).st_ino
    os.unlink(p)
    out.append(f"{d} mode={oct(st.st_mode & 0o7777)} uid={st.st_uid} xattrs={os.listxattr(d)} flags={flags} "
               f"times_equal={st.st_atime_ns == st.st_mtime_ns == st.st_ctime_ns} first_ino={ino}")
print("\n".join(out))
for d in ("/tmp", "/dev/shm", "/sandbox"):
    for i in range(50):
        open(f"{d}/x{i}", "w").close()
        os.unlink(f"{d}/x{i}")
os.chmod("/sandbox", 0o700)
os.setxattr("/sandbox", "user.left", b"by the previous run")
os.utime("/sandbox", (1e9, 1e9))
fd = os.open("/sandbox", os.O_RDONLY)
fcntl.ioctl(fd, 0x40086602, struct.pack("q", 0x40))   # FS_IOC_SETFLAGS, FS_NODUMP_FL
os.close(fd)
"""


class ReusedMounts(DaemonTestCase):
    config = {"poolStrategy": "fast", "poolSize": {"clean": 1, "dirty": 1}, "maxConcurrent": 1}

    def test_a_touched_mount_is_new_for_the_next_user(self):
        ids, seen = [], []
        for _ in range(6):
            res = self.daemon.execute({"cmd": "python3 -I -c '" + MOUNT_PROBE.replace("'", "'\\''") + "'"})
            self.assertEqual(res["exitCode"], 0, res)
            seen.append(res["stdout"])
            ids.append(res["containerId"])
        self.assertLess(len(set(ids)), len(ids), "the pool never reused a sandbox")
        first = seen[0].split("\n")
        self.assertIn("/sandbox mode=0o755 uid=1000 xattrs=[] flags=0 times_equal=True", first[0])
        self.assertIn("/tmp mode=0o1777 uid=0 xattrs=[] flags=0 times_equal=True", first[1])
        self.assertIn("/dev/shm mode=0o1777 uid=0 xattrs=[] flags=0 times_equal=True", first[2])
        for i, s in enumerate(seen[1:], 1):
            self.assertEqual(s, seen[0], f"run {i} (in {ids[i]}, after a run in {ids[i - 1]}) found another state")

    def test_the_mounts_keep_their_flags_and_sizes(self):
        # Mounted at the start, kept or mounted again at a clean, resized for a run: /sandbox
        # nosuid and nodev, /tmp and /dev/shm noexec too, each with the size the run asked for.
        show = ("awk '$5 == \"/sandbox\" || $5 == \"/tmp\" || $5 == \"/dev/shm\" "
                "{ n = split($6, o, \",\"); f = \"\"; for (i = 1; i <= n; i++) if (o[i] ~ /^no(suid|dev|exec)$/) f = f o[i] \" \"; "
                "print $5, f, $NF }' /proc/self/mountinfo; df -k --output=target,size /sandbox /tmp /dev/shm | tail -n +2")
        ids = []
        for i, opts in enumerate([{}, {"sandboxSize": "8m", "tmpSize": "4m"}, {}, {"sandboxSize": "8m"}]):
            res = self.daemon.execute({"cmd": show + (" ; touch /tmp/t /dev/shm/s" if i == 1 else "")}, opts)
            self.assertEqual(res["exitCode"], 0, res)
            ids.append(res["containerId"])
            lines = res["stdout"].splitlines()
            flags = {l.split()[0]: set(l.split()[1:-1]) for l in lines[:3]}
            sizes = {l.split()[0]: int(l.split()[1]) for l in lines[3:]}
            self.assertEqual(flags, {"/sandbox": {"nosuid", "nodev"}, "/tmp": {"nosuid", "nodev", "noexec"},
                                     "/dev/shm": {"nosuid", "nodev", "noexec"}}, (i, res["stdout"]))
            self.assertEqual(sizes["/sandbox"], 8192 if "sandboxSize" in opts else 512 * 1024, (i, res["stdout"]))
            self.assertEqual(sizes["/tmp"], 4096 if "tmpSize" in opts else 256 * 1024, (i, res["stdout"]))
            self.assertEqual(sizes["/dev/shm"], 64 * 1024, (i, res["stdout"]))
        self.assertLess(len(set(ids)), len(ids), "the pool never reused a sandbox")

    def test_a_file_without_a_name_is_seen_too(self):
        # O_TMPFILE makes a file without touching the directory, and once closed it leaves
        # nothing but the inode counter moved on, which the next user's first file would show.
        probe = ("import os\nfor d in ('/sandbox', '/tmp', '/dev/shm'):\n"
                 "    inos = []\n"
                 "    for i in range(20):\n"
                 "        fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)\n"
                 "        inos.append(os.fstat(fd).st_ino)\n"
                 "        os.close(fd)\n"
                 "    print(d, inos[0])\n")
        ids, seen = [], []
        for _ in range(6):
            res = self.daemon.execute({"cmd": "python3 -I -c \"" + probe + "\""})
            self.assertEqual(res["exitCode"], 0, res)
            seen.append(res["stdout"])
            ids.append(res["containerId"])
        self.assertLess(len(set(ids)), len(ids), "the pool never reused a sandbox")
        for i, s in enumerate(seen[1:], 1):
            self.assertEqual(s, seen[0], f"run {i} (in {ids[i]}) found the inode counter moved: {seen}")

    def test_an_untouched_mount_is_kept(self):
        # A run that writes nowhere leaves the three mounts as they were: the clean keeps them
        # (no unmount, so no grace period). After a run that wrote to /tmp, only /tmp is new.
        release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
        if release < (6, 13):
            self.skipTest("tmpfs without multigrain timestamps: every clean mounts afresh")
        # a new tmpfs has a new root directory, born when it was mounted (mount ids are reused)
        show = "stat -c '%n %w' /sandbox /tmp /dev/shm | tr ' ' _ | sed 's/_/ /'"
        runs = [self.daemon.execute({"cmd": show + (" ; echo x > /tmp/t" if i == 2 else "")}) for i in range(6)]
        by_box = {}
        for i, r in enumerate(runs):
            self.assertEqual(r["exitCode"], 0, r)
            by_box.setdefault(r["containerId"], []).append((i, dict(line.split() for line in r["stdout"].splitlines())))
        pairs = [(a, b) for views in by_box.values() for a, b in zip(views, views[1:])]
        self.assertTrue(pairs, "the pool never reused a sandbox")
        self.assertIn(2, [a[0] for a, _ in pairs], f"run 2's sandbox never served again: {list(by_box)}")
        for (i, before), (j, after) in pairs:
            self.assertEqual(set(before), {"/sandbox", "/tmp", "/dev/shm"}, before)
            self.assertEqual(before["/sandbox"], after["/sandbox"], (i, j))
            self.assertEqual(before["/dev/shm"], after["/dev/shm"], (i, j))
            if i == 2:   # (consecutive runs in one sandbox: i was the one before j there)
                self.assertNotEqual(before["/tmp"], after["/tmp"], f"run 2's /tmp kept for run {j}")
            else:
                self.assertEqual(before["/tmp"], after["/tmp"], (i, j))


class WritableRoot(DaemonTestCase):
    # A server that turns readonlyRootFs off: the root is a writable tmpfs, but owned by the
    # sandbox's root, so the program (uid 1000) still writes only where every run may, and the
    # next run in the same sandbox finds nothing of it.
    config = {"defaults": {"readonlyRootFs": False}, "poolStrategy": "fast", "poolSize": {"clean": 1, "dirty": 1},
              "maxConcurrent": 1}

    PROBE = r"""
grep -q ' / / rw,' /proc/self/mountinfo && echo ROOT_RW
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /sandbox -o -path /tmp \) -prune -o -writable -print 2>/dev/null
for d in / /etc /var /run /usr /home /root /opt /mnt /srv; do touch "$d/.left" 2>/dev/null && echo "WROTE $d"; done
ls -a / /etc /var | md5sum
"""

    def test_the_program_cannot_write_to_the_root(self):
        seen, ids = [], []
        for _ in range(3):
            res = self.daemon.execute({"code": self.PROBE, "runtime": "bash"})
            self.assertEqual(res["exitCode"], 0, res)
            seen.append(res["stdout"])
            ids.append(res["containerId"])
        self.assertLess(len(set(ids)), len(ids), "the pool never reused a sandbox")
        lines = seen[0].splitlines()
        self.assertEqual(lines[0], "ROOT_RW", f"the root is not writable at all, the test proves nothing: {seen[0]}")
        self.assertEqual(len(lines), 2, f"the program could write outside its mounts: {seen[0]}")
        for s in seen[1:]:
            self.assertEqual(s, seen[0])


class Inotify(DaemonTestCase):
    config = {"poolSize": 1}

    def test_no_inotify(self):
        code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "fd = libc.inotify_init1(0)\nprint(fd, os.strerror(ctypes.get_errno()))")
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"], "-1 Operation not permitted")


class CoreDumps(DaemonTestCase):
    """A crash loop must not make the host dump cores or start a core helper for each crash:
    where core_pattern pipes to a helper (systemd-coredump, apport), the kernel ignores
    RLIMIT_CORE 0 and starts the helper as root on the host, outside the sandbox's cgroup; 1 is
    its value for "abort", and the program cannot lower it (this machine's core_pattern is a
    file, so the helper itself is not seen here)."""
    config = {"poolSize": 1}

    def test_the_limit_is_one_and_stays_one(self):
        code = ("import os, resource, errno\n"
                "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
                "for f in (lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 1)),\n"
                "          lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),\n"
                "          lambda: resource.prlimit(0, resource.RLIMIT_CORE, (0, 0)),\n"
                "          lambda: resource.prlimit(os.getpid(), resource.RLIMIT_CORE, (0, 1))):\n"
                "    try:\n"
                "        f(); print('lowered')\n"
                "    except ValueError as e:\n"
                "        print('EPERM' if 'not allowed' in str(e) else e)\n"   # how CPython words EPERM here
                "    except OSError as e:\n"
                "        print(errno.errorcode[e.errno])\n"
                "print(resource.prlimit(0, resource.RLIMIT_CORE))\n"
                "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
                # Other limits are the program's to lower, as before.
                "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); print(resource.getrlimit(resource.RLIMIT_NOFILE))")
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"].splitlines(),
                         ["(1, 1)", "EPERM", "EPERM", "EPERM", "EPERM", "(1, 1)", "(1, 1)", "(64, 64)"], res)

    def test_the_upper_half_of_the_resource_does_not_get_past(self):
        # setrlimit(2) takes an unsigned int: 1 << 32 | RLIMIT_CORE is RLIMIT_CORE to the kernel.
        code = ("import ctypes, ctypes.util, errno, resource\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "lim = (ctypes.c_ulong * 2)(0, 0)\n"
                "r = libc.syscall(160, ctypes.c_ulong((1 << 32) | resource.RLIMIT_CORE), lim)\n"
                "print(r, errno.errorcode.get(ctypes.get_errno(), 0), resource.getrlimit(resource.RLIMIT_CORE))")
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"], "-1 EPERM (1, 1)", res)

    def test_a_crash_leaves_no_core(self):
        res = self.run_code("cd /sandbox && bash -c 'kill -SEGV $$'; echo $?; ls -A /sandbox /tmp | grep -c core || true")
        self.assertEqual(res["stdout"].splitlines(), ["139", "0"], res)


class HugePages(DaemonTestCase):
    """Huge pages come from the host's pool, outside the sandbox's memory limit (cgroup v1, and
    v2 without memory_hugetlb_accounting), and anonymous ones ask no permission: every way to
    them is refused, the ordinary ways stay open. (This machine has no pool: without the filter
    mmap says ENOMEM, memfd_create(MFD_HUGETLB) succeeds and shmget of size 0 says EINVAL.)"""
    config = {"poolSize": 1}

    def test_no_huge_pages(self):
        code = ("import ctypes, errno, mmap\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "libc.mmap.restype = ctypes.c_void_p\n"
                "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
                "FAILED, MAP_HUGETLB, MFD_HUGETLB, SHM_HUGETLB, size = ctypes.c_void_p(-1).value, 0x40000, 4, 0o4000, 2 << 20\n"
                "def say(r, bad): return 'ok' if r != bad else errno.errorcode[ctypes.get_errno()]\n"
                "anon = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS\n"
                "print(say(libc.mmap(None, size, 3, anon | MAP_HUGETLB, -1, 0), FAILED),\n"
                "      say(libc.mmap(None, size, 3, anon | MAP_HUGETLB | (21 << 26), -1, 0), FAILED),\n"   # MAP_HUGE_2MB
                "      say(libc.memfd_create(b'x', MFD_HUGETLB), -1),\n"
                # Size 0: the kernel would say EINVAL (it refuses SHM_HUGETLB here anyway, for lack of
                # RLIMIT_MEMLOCK, with EPERM): only the filter answers EPERM before it looks.
                "      say(libc.shmget(0, 0, 0o1000 | SHM_HUGETLB | 0o600), -1))\n"
                "print(say(libc.mmap(None, size, 3, anon, -1, 0), FAILED), say(libc.memfd_create(b'y', 0), -1),\n"
                "      say(libc.shmget(0, size, 0o1000 | 0o600), -1))")
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"].splitlines(), ["EPERM EPERM EPERM EPERM", "ok ok ok"], res)


class LinuxAio(DaemonTestCase):
    """Linux AIO contexts count against fs.aio-max-nr, one number for the whole host that no
    cgroup bounds: at the previous build a loop of io_setup() in a sandbox took it all (65,536
    events, 16 contexts of 4,096) and a host process's io_setup() failed with EAGAIN meanwhile.
    io_setup() now says ENOSYS, as a kernel without AIO does."""
    config = {"poolSize": 1}

    def test_no_aio_contexts(self):
        code = ("import ctypes, errno\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "ctx = ctypes.c_ulong(0)\n"
                "r = libc.syscall(206, 128, ctypes.byref(ctx))\n"   # io_setup
                "print(r, errno.errorcode.get(ctypes.get_errno(), 0), ctx.value)")
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"], "-1 ENOSYS 0", res)


class FilesCharged(DaemonTestCase):
    config = {"poolSize": 1, "limits": {"maxBodyBytes": 16 << 20}}

    def test_uploads_count_against_the_session_memory(self):
        import base64
        r = self.daemon.post("/execute", {"request": {"cmd": "true"}, "sessionId": "mem",
                                          "options": {"memoryLimit": "64m", "sandboxSize": "512m"}})
        self.assertEqual(r.status, 200, r)
        blob = base64.b64encode(os.urandom(10 << 20)).decode()
        accepted, statuses = 0, []
        for i in range(10):
            r = self.daemon.post("/file", {"sessionId": "mem", "path": f"f{i}", "content": blob})
            statuses.append(r.status)
            if r.status == 200:
                accepted += 10
        # 100 MiB offered to a 64 MiB session: the limit holds, and says so
        self.assertIn(413, statuses, statuses)
        self.assertLessEqual(accepted, 64)
        self.assertIn("memory limit", self.daemon.post("/file", {"sessionId": "mem", "path": "g", "content": blob}).json()["error"])
        self.daemon.request("DELETE", "/session/mem")

    def test_request_files_count_against_the_run(self):
        # Written by the init's writer in the sandbox's cgroup: over the memory limit the writer
        # is killed and the request answers 413, nothing runs, and the sandbox is fine after.
        six = "x" * (6 << 20)
        r = self.daemon.post("/execute", {"request": {"cmd": "echo RAN", "files": {"a": six, "b": six}},
                                          "options": {"memoryLimit": "8m"}})
        self.assertEqual(r.status, 413, r)
        r = self.daemon.post("/execute", {"request": {"cmd": "echo RAN", "files": {"a": six}},
                                          "options": {"sandboxSize": "2m"}})
        self.assertEqual(r.status, 413, r)
        # What the init wrote is charged to the run (and so seen in its memory figure).
        res = self.daemon.execute({"cmd": "true", "files": {"a": six}}, {"memoryLimit": "64m"})
        self.assertGreaterEqual(res["resourceUsage"]["memoryMB"], 6, res)
        res = self.daemon.execute({"cmd": "stat -c '%u %a %s' /sandbox/d/e/a.txt /tmp/b; cat /sandbox/d/e/a.txt; echo; pwd",
                                   "files": {"d/e/a.txt": "hi", "/tmp/b": "xyz"}, "workdir": "/sandbox/w/x"})
        self.assertEqual(res["stdout"].split("\n"), ["1000 644 2", "1000 644 3", "hi", "/sandbox/w/x"], res)


class TcpBuffers(DaemonTestCase):
    config = {"poolSize": 1}

    @unittest.skipUnless(os.path.exists("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes") or
                         os.path.isdir("/sys/fs/cgroup/memory"), "cgroup v1 memory controller only")
    def test_tcp_buffers_within_the_memory_limit(self):
        # Connections that are written to and never read fill socket buffers: on cgroup v1 these
        # are kernel memory outside memory.limit_in_bytes unless the TCP limit is set.
        code = ("import socket\na = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen(512)\n"
                "total = 0\nkeep = []\nfor i in range(150):\n"
                "    b = socket.create_connection(a.getsockname()); c, _ = a.accept(); b.setblocking(False)\n"
                "    keep += [b, c]\n"
                "    try:\n        while True:\n            total += b.send(b'x' * 65536)\n"
                "    except OSError:\n        pass\nprint(total)")
        res = self.run_code(code, "python", {"memoryLimit": "64m"}, timeoutMs=20000)
        queued = int(res["stdout"].split()[-1]) if res["stdout"].strip() else 0
        self.assertLess(queued, 96 << 20, res)


class OutputAmplification(DaemonTestCase):
    config = {"poolSize": 2, "limits": {"outputBudgetBytes": 3 << 20}}

    def test_control_bytes_counted_as_sent(self):
        r = self.daemon.post("/execute", {"request": {"code": "import sys; sys.stdout.write('\\x01' * 1000000)",
                                                      "runtime": "python"}, "options": {"maxOutputSize": 1 << 20}})
        self.assertEqual(r.status, 200)
        self.assertLess(len(r.body), 1200000)   # not 6 MB of "\u0001"
        self.assertIn("OUTPUT TRUNCATED", r.json()["stdout"])

    def test_output_budget_across_runs(self):
        import concurrent.futures
        code = "import sys, time; sys.stdout.write('y' * 1500000); sys.stdout.flush(); time.sleep(1)"
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            rs = list(ex.map(lambda _: self.daemon.post("/execute", {"request": {"code": code, "runtime": "python"},
                                                                      "options": {"maxOutputSize": 2 << 20}}), range(3)))
        kept = [r.json()["stdout"].split("\n\n---")[0].count("y") for r in rs]
        self.assertLessEqual(sum(kept), 3 << 20)
        self.assertTrue(any(r.json()["truncated"] for r in rs), kept)
        self.assertEqual(self.daemon.execute({"code": "print('y' * 10)", "runtime": "python"})["stdout"], "y" * 10)


class SlowKeyStore(unittest.TestCase):
    def test_bodies_of_unknown_keys_are_not_buffered(self):
        import concurrent.futures
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)   # accepts and never answers: the key store hangs
        d = Daemon(config={"poolSize": 1, "auth": {"timeoutMs": 3000}},
                   args=["--auth-db", f"postgres://u:p@127.0.0.1:{hole.getsockname()[1]}/x"]).start()
        try:
            before = vm_rss_kib(d.pid())
            body = b'{"request":{"cmd":"true","stdin":"' + b"x" * (4 << 20) + b'"}}'

            def upload(i):
                c = socket.create_connection(("127.0.0.1", d.port), timeout=10)
                c.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer isol8_" + (b"%064x" % i) +
                          b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
                try:
                    c.sendall(body)
                except OSError:
                    pass
                return c

            with concurrent.futures.ThreadPoolExecutor(40) as ex:
                conns = [f for f in [ex.submit(upload, i) for i in range(40)]]
                time.sleep(1.5)
                grown = vm_rss_kib(d.pid()) - before
                for f in conns:
                    try:
                        f.result(timeout=15).close()
                    except Exception:
                        pass
            # 160 MiB of bodies offered while no key could be checked: at most the 32 MiB budget
            # for bodies of requests whose key is looked up (HTTP_UNAUTHENTICATED_BODY_MAX) is
            # held, in buffers that grow by doubling (so up to twice it in RSS, measured 36-56 MiB),
            # plus the connections' own memory; everything buffered would be 160 MiB and more.
            self.assertLess(grown, 80 << 10, grown)
            r = d.post("/execute", {"request": {"cmd": "echo master"}})
            self.assertEqual(r.json()["stdout"], "master")
        finally:
            self.assertEqual(d.stop(), 0, d.stderr_text()[-2000:])
            hole.close()


class AuthFailureFlood(unittest.TestCase):
    def test_failures_are_rate_limited(self):
        with tempfile.TemporaryDirectory() as logs:
            d = Daemon(config={"poolSize": 1, "audit": {"enabled": True, "destination": "file", "logDir": logs}}).start()
            try:
                for i in range(300):
                    d.request("GET", "/" + "p" * 20000, key="wrong-key")
            finally:
                self.assertEqual(d.stop(), 0)
            records = []
            for name in os.listdir(logs):
                with open(os.path.join(logs, name)) as f:
                    records += [json.loads(line) for line in f if line.strip()]
            failures = [r for r in records if r.get("ISOL8_AUTH_REASON") not in (None, "summary")]
            summaries = [r for r in records if r.get("ISOL8_AUTH_REASON") == "summary"]
            self.assertLessEqual(len(failures), 300)
            self.assertLess(len(failures), 150)
            self.assertTrue(summaries)
            self.assertEqual(len(failures) + sum(int(r["ISOL8_FAILURE_COUNT"]) for r in summaries), 300)
            self.assertTrue(all(len(r.get("ISOL8_PATH", "")) <= 256 for r in failures))


if __name__ == "__main__":
    isol8test.main()
