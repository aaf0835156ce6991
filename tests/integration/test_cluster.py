#!/usr/bin/env python3
"""Several servers as one (docs/scale-out.md): three isol8 servers sharing PostgreSQL (or
MariaDB) behind a real HAProxy (or nginx) in round robin, run from docs/examples' files. A
session's runs, files, stream and WebSocket all land on one sandbox whichever server the
balancer picks; DELETE ends it everywhere; a revoked key fails everywhere at once (PostgreSQL);
a killed server's sessions answer 410 while nothing else breaks; a drained server leaves with its
running work finished, and its sessions answer 410 after."""
import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import dbservers  # noqa: E402
import isol8test  # noqa: E402
from isol8test import Daemon  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples")
SECRET = "cluster-test-secret-" + "x" * 24
LOST = {"error": "Session was lost with its server"}


def wait_port(port, timeout=10):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class HAProxy:
    """docs/examples/haproxy.cfg with this test's addresses."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="isol8-haproxy-")
        self.port = isol8test.free_port()
        with open(os.path.join(EXAMPLES, "haproxy.cfg")) as f:
            text = f.read()
        servers = "".join(f"    server isol8-{i + 1} 127.0.0.1:{p} check\n" for i, p in enumerate(ports))
        text = re.sub(r"(?m)^    server .*\n", "", text).rstrip("\n") + "\n" + servers
        text = text.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{self.port}")
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"))
        if not wait_port(self.port):
            raise RuntimeError("haproxy did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx:
    """docs/examples/nginx.conf with this test's addresses, in an http block of its own."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="isol8-nginx-")
        self.port = isol8test.free_port()
        with open(os.path.join(EXAMPLES, "nginx.conf")) as f:
            text = f.read()
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
        text = re.sub(r"(?m)^    server 10\.0\.0\.\d+:3000.*\n", "", text)
        text = text.replace("upstream isol8 {\n", "upstream isol8 {\n" + servers, 1)
        text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        site = os.path.join(self.dir, "isol8.conf")
        with open(site, "w") as f:
            f.write(text)
        d = self.dir
        main = (f"daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n"
                f"http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n"
                f" fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n"
                f" include {site};\n}}\n")
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(main)
        self.proc = subprocess.Popen(["nginx", "-p", d, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr"), "w"))
        if not wait_port(self.port):
            raise RuntimeError("nginx did not start: " + open(os.path.join(d, "stderr")).read())

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Balanced:
    """Requests through the balancer alone (a Daemon look-alike on its port)."""

    def __init__(self, port, key):
        self.front = Daemon(key=key, port=port)

    def __getattr__(self, name):
        return getattr(self.front, name)


class ClusterBase:
    db_class = None
    balancer_class = None
    instant_revocation = False
    cache_ttl_ms = 60000

    @classmethod
    def setUpClass(cls):
        cls.db = cls.db_class().init().start()
        cls.tmp = tempfile.mkdtemp(prefix="isol8-cluster-")
        cls.bus = isol8test.PrivateBus(cls.tmp)   # node-2's, for isol8ctl
        cls.ports = [isol8test.free_port() for _ in range(3)]
        cls.daemons = [cls.make_daemon(i) for i in range(3)]
        cls.balancer = cls.balancer_class(cls.ports)
        cls.lb = Balanced(cls.balancer.port, isol8test.MASTER)
        key = cls.daemons[0].post("/auth/keys", {"name": "cluster", "tenantId": "tenant-a"})
        assert key.status == 201, key
        cls.key = key.json()["key"]
        # Every server has seen every other's heartbeat, and the balancer every server's health.
        deadline = time.time() + 10
        while time.time() < deadline:
            views = [d.get("/queue/status").json().get("cluster", {}).get("nodes", []) for d in cls.daemons]
            if all(len([n for n in v if n["state"] == "live"]) == 3 for v in views):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the servers never saw each other: {views}")
        time.sleep(1.2)

    @classmethod
    def make_daemon(cls, i):
        cfg = {
            "cluster": {"nodeId": f"node-{i + 1}", "advertiseUrl": f"http://127.0.0.1:{cls.ports[i]}", "secret": SECRET},
            "drainTimeoutMs": 20000,
            "auth": {"cacheTtlMs": cls.cache_ttl_ms},
        }
        bus = ["--bus", cls.bus.address] if i == 1 else []
        return Daemon(config=cfg, port=cls.ports[i], args=["--auth-db", cls.db.url()] + bus).start()

    @classmethod
    def tearDownClass(cls):
        # Everything is stopped whatever fails; then a server that did not stop cleanly fails.
        errors = []
        cls.balancer.stop()
        for d in cls.daemons:
            if d.proc and d.proc.poll() is None:
                t0 = time.monotonic()
                try:
                    rc = d.stop()
                    if rc != 0:
                        errors.append(f"a server exited {rc}: {d.stderr_text()[-1500:]}")
                except AssertionError as e:
                    errors.append(str(e) + d.stderr_text()[-1500:])
                if time.monotonic() - t0 > 5:
                    errors.append(f"a server took {time.monotonic() - t0:.1f} s to stop")
        cls.db.destroy()
        cls.bus.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if errors:
            raise AssertionError("; ".join(errors))

    def run_in(self, target, session, code, key=None, expect=200):
        r = target.post("/execute", {"request": {"code": code, "runtime": "bash"}, "sessionId": session},
                        key=key or self.key)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def holders(self, session):
        """Which servers hold the session (asked directly, with the master key)."""
        return [i for i, d in enumerate(self.daemons)
                if d.proc.poll() is None and any(s["id"] == session for s in d.get("/sessions").json()["sessions"])]

    def ws_run(self, target, session, code):
        import websockets

        async def go():
            url = f"ws://127.0.0.1:{target.port}/execute/ws"
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {self.key}"}) as ws:
                await ws.send(json.dumps({"type": "execute", "sessionId": session,
                                          "request": {"code": code, "runtime": "bash"}}))
                return await isol8test.ws_collect(ws)
        return asyncio.run(asyncio.wait_for(go(), 30))

    def test_1_session_lands_on_one_sandbox(self):
        s = "sess-" + uuid.uuid4().hex[:8]
        mark = uuid.uuid4().hex
        out = self.run_in(self.lb, s, f"echo {mark} > /sandbox/mark; echo 1 >> /sandbox/count; hostname")
        self.assertEqual(out["exitCode"], 0, out)
        self.assertEqual(len(self.holders(s)), 1)
        owner = self.holders(s)[0]
        # Run 2 as a stream, through the balancer.
        r = self.lb.post("/execute/stream", {"request": {"code": "echo 2 >> /sandbox/count; cat /sandbox/mark",
                                                         "runtime": "bash"}, "sessionId": s}, key=self.key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({k.lower(): v for k, v in r.headers.items()}.get("content-type"), "text/event-stream")
        self.assertIn(f'"data":"{mark}\\n"', r.body)
        # Run 3 over a WebSocket, through the balancer.
        events = self.ws_run(self.lb, s, "echo 3 >> /sandbox/count; cat /sandbox/mark")
        self.assertIn({"type": "stdout", "data": mark + "\n", "phase": "code"}, events, events)
        self.assertIn("exit", [e["type"] for e in events])
        # Files both ways, through the balancer.
        import base64
        r = self.lb.post("/file", {"sessionId": s, "path": "/sandbox/up.txt",
                                   "content": base64.b64encode(b"uploaded").decode()}, key=self.key)
        self.assertEqual(r.status, 200, r)
        r = self.lb.get(f"/file?sessionId={s}&path=/sandbox/mark", key=self.key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(base64.b64decode(r.json()["content"]).decode(), mark + "\n")
        # Run 4 straight at each server that does not hold it: forwarded, same sandbox.
        for i, d in enumerate(self.daemons):
            if i != owner:
                out = self.run_in(d, s, "cat /sandbox/up.txt; echo")
                self.assertEqual(out["stdout"], "uploaded", out)
        events = self.ws_run(self.daemons[(owner + 1) % 3], s, "echo ws-forwarded; cat /sandbox/up.txt")
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "ws-forwarded\nuploaded", events)
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"}, events)
        # Run 5: everything above happened in the one sandbox.
        out = self.run_in(self.lb, s, "echo 5 >> /sandbox/count; cat /sandbox/count | tr '\\n' ' '; cat /sandbox/mark")
        self.assertEqual(out["stdout"], f"1 2 3 5 {mark}", out)
        self.assertEqual(self.holders(s), [owner])
        # Session ids are per tenant: another tenant's files with the same id are never this one's,
        # whichever server it asks.
        other = self.daemons[0].post("/auth/keys", {"name": "other", "tenantId": "tenant-b"}).json()["key"]
        for d in self.daemons:
            self.assertEqual(d.get(f"/file?sessionId={s}&path=/sandbox/mark", key=other).status, 404)
        for d in self.daemons:
            out = self.run_in(d, s, "cat /sandbox/mark 2>/dev/null || echo not-here; echo x >> /sandbox/b", key=other)
            self.assertEqual(out["stdout"], "not-here", out)
        out = self.run_in(self.lb, s, "wc -l < /sandbox/b", key=other)
        self.assertEqual(out["stdout"], "3", out)   # tenant-b's own session, one sandbox too
        self.assertEqual(self.run_in(self.lb, s, "cat /sandbox/mark")["stdout"], mark)

    def test_1b_concurrent_first_runs_join_one_session(self):
        # Eight clients start the same new session at once, through the balancer (so on every
        # server): one server makes it, the others join it — one sandbox, every run in it.
        # The same for the master key, whose sessions are in a namespace of their own.
        for key in (self.key, isol8test.MASTER):
            s = "sess-" + uuid.uuid4().hex[:8]
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                runs = [ex.submit(self.run_in, self.daemons[i % 3], s, f"echo {i} >> /sandbox/who", key) for i in range(8)]
                for r in runs:
                    self.assertEqual(r.result()["exitCode"], 0)
            self.assertEqual(len(self.holders(s)), 1, "a second sandbox was made for one session")
            out = self.run_in(self.lb, s, "sort -n /sandbox/who | tr '\\n' ' '", key=key)
            self.assertEqual(out["stdout"], "0 1 2 3 4 5 6 7", out)

    def test_2_delete_ends_it_everywhere(self):
        s = "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.lb, s, "echo here > /sandbox/keep")
        owner = self.holders(s)[0]
        # DELETE at a server that does not hold it.
        r = self.daemons[(owner + 1) % 3].request("DELETE", f"/session/{s}", key=self.key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True})
        self.assertEqual(self.holders(s), [])
        # The id is free: a new session with it starts empty, wherever it lands.
        out = self.run_in(self.lb, s, "cat /sandbox/keep 2>/dev/null || echo fresh")
        self.assertEqual(out["stdout"], "fresh", out)
        self.assertEqual(self.lb.request("DELETE", f"/session/{s}", key=self.key).status, 200)
        self.assertEqual(self.holders(s), [])

    def test_3_revocation_reaches_every_server(self):
        # PostgreSQL: at once (LISTEN/NOTIFY), however long the caches keep keys. MySQL/MariaDB
        # have no notifications: the other servers refuse it when their cache entry expires.
        bound_ms = 100 if self.instant_revocation else self.cache_ttl_ms + 500
        k = self.daemons[0].post("/auth/keys", {"name": "short", "tenantId": "tenant-a"}).json()
        for d in self.daemons:
            self.assertEqual(d.get("/queue/status", key=k["key"]).status, 200)   # cached on each (a minute)
        self.assertEqual(self.lb.request("DELETE", f"/auth/keys/{k['id']}").status, 200)
        revoked = time.monotonic()
        waits = []
        for d in self.daemons:
            while d.get("/queue/status", key=k["key"]).status != 403:
                self.assertLess(time.monotonic() - revoked, bound_ms / 1000 + 2, "the revocation never reached a server")
                time.sleep(0.002)
            waits.append((time.monotonic() - revoked) * 1000)
        print(f"# revoked key refused by the three servers {', '.join(f'{w:.1f}' for w in waits)} ms after")
        self.assertLess(max(waits), bound_ms, waits)
        self.assertEqual(self.lb.get("/queue/status", key=k["key"]).status, 403)

    def test_4_killed_server_loses_only_its_sessions(self):
        a, b = "sess-" + uuid.uuid4().hex[:8], "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.daemons[0], a, "echo a > /sandbox/a")      # held by node-1
        self.run_in(self.daemons[1], b, "echo b > /sandbox/b")      # held by node-2
        self.assertEqual(self.holders(a), [0])
        self.daemons[0].proc.kill()
        self.daemons[0].proc.wait()
        self.daemons[0].proc.stdout.close()
        t0 = time.monotonic()
        for _ in range(6):
            r = self.lb.post("/execute", {"request": {"code": "cat /sandbox/a", "runtime": "bash"}, "sessionId": a},
                             key=self.key)
            self.assertEqual((r.status, r.json()), (410, LOST), r)
        self.assertLess(time.monotonic() - t0, 3, "410 must come at once, not after a timeout")
        for d in self.daemons[1:]:
            self.assertEqual(d.get(f"/file?sessionId={a}&path=/sandbox/a", key=self.key).status, 410)
        # Nothing else broke: the other session, new sessions and plain runs.
        for _ in range(4):
            self.assertEqual(self.run_in(self.lb, b, "cat /sandbox/b")["stdout"], "b")
            self.assertEqual(self.lb.execute({"code": "echo plain", "runtime": "bash"}, key=self.key)["stdout"], "plain")
        c = "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.lb, c, "echo c > /sandbox/c")
        self.assertEqual(self.run_in(self.lb, c, "cat /sandbox/c")["stdout"], "c")
        # The server comes back (same node id): what it held is still lost, not silently new.
        type(self).daemons[0] = self.make_daemon(0)
        r = self.lb.post("/execute", {"request": {"code": "ls /sandbox", "runtime": "bash"}, "sessionId": a}, key=self.key)
        self.assertEqual((r.status, r.json()), (410, LOST), r)
        r = self.daemons[0].post("/execute", {"request": {"code": "ls /sandbox", "runtime": "bash"}, "sessionId": a},
                                 key=self.key)
        self.assertEqual(r.status, 410, r)
        # Until the client lets it go: DELETE frees the id.
        self.assertEqual(self.lb.request("DELETE", f"/session/{a}", key=self.key).status, 200)
        out = self.run_in(self.lb, a, "ls /sandbox | wc -l")
        self.assertEqual(out["stdout"], "0", out)

    def test_4b_deleted_lost_session_is_free_on_every_server_at_once(self):
        # A session lost with its server (a row of a node long gone).
        s = "sess-" + uuid.uuid4().hex[:8]
        now = int(time.time() * 1000)
        self.db.sql("INSERT INTO isol8_sessions (tenant_id, session_id, node_id, state, created_at, updated_at)"
                    f" VALUES ('tenant-a', '{s}', 'node-9', 'lost', {now}, {now})")
        for d in self.daemons:
            r = d.post("/execute", {"request": {"code": "ls /sandbox", "runtime": "bash"}, "sessionId": s}, key=self.key)
            self.assertEqual((r.status, r.json()), (410, LOST), r)
        # DELETE answers once the directory has forgotten it, not before: while another client
        # keeps writes to the directory waiting, the DELETE waits with them.
        locker = self.db.hold_sessions_lock(1.5)
        try:
            t0 = time.monotonic()
            r = self.daemons[0].request("DELETE", f"/session/{s}", key=self.key)
            waited = time.monotonic() - t0
        finally:
            locker.wait(10)
        self.assertEqual((r.status, r.json()), (200, {"ok": True}), r)
        self.assertGreater(waited, 0.8, "DELETE answered before the directory forgot the session")
        # So the client's next request, whichever server it reaches, finds the id free.
        out = self.run_in(self.daemons[1], s, "ls /sandbox | wc -l")
        self.assertEqual(out["stdout"], "0", out)
        self.assertEqual(self.holders(s), [1])
        self.assertEqual(self.lb.request("DELETE", f"/session/{s}", key=self.key).status, 200)

    def test_5_drained_server_finishes_its_work(self):
        s = "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.daemons[2], s, "echo kept > /sandbox/k")
        node = self.daemons[2]
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            # The run goes in through another server, forwarded to node-3.
            running = ex.submit(self.run_in, self.daemons[0], s, "sleep 2; cat /sandbox/k; echo finished")
            time.sleep(0.7)
            node.proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 3
            while time.time() < deadline:
                h = node.get("/health", key=None)
                if h.status == 503:
                    break
                time.sleep(0.05)
            self.assertEqual((h.status, h.json().get("status")), (503, "draining"))
            view = {n["nodeId"]: n["state"] for n in self.daemons[1].get("/queue/status").json()["cluster"]["nodes"]}
            self.assertIn(view.get("node-3"), ("draining", "live"))
            self.assertEqual(running.result()["stdout"], "kept\nfinished")
        self.assertEqual(node.proc.wait(15), 0)
        node.proc.stdout.close()
        # Gone, and said so: its session is lost, not silently replaced.
        r = self.lb.post("/execute", {"request": {"code": "ls", "runtime": "bash"}, "sessionId": s}, key=self.key)
        self.assertEqual((r.status, r.json()), (410, LOST), r)
        deadline = time.time() + 3   # the next heartbeat's view
        while time.time() < deadline:
            view = {n["nodeId"]: n["state"] for n in self.daemons[1].get("/queue/status").json()["cluster"]["nodes"]}
            if view.get("node-3") == "gone":
                break
            time.sleep(0.1)
        self.assertEqual(view.get("node-3"), "gone", view)
        self.assertEqual(self.lb.execute({"code": "echo still", "runtime": "bash"}, key=self.key)["stdout"], "still")


    def test_6_isol8ctl_status_shows_the_cluster(self):
        ctl = os.path.join(os.path.dirname(isol8test.ISOL8), "isol8ctl")
        self.bus.wait_for_name()
        s = "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.daemons[1], s, "true")   # node-2 holds a session
        deadline = time.time() + 3
        while time.time() < deadline:
            r = subprocess.run([ctl, f"--address={self.bus.address}", "--json", "status"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            nodes = {n["nodeId"]: n for n in json.loads(r.stdout)["cluster"]}
            if nodes["node-2"]["sessions"] >= 1:
                break
            time.sleep(0.2)
        self.assertEqual({k: v["state"] for k, v in nodes.items()}, {"node-1": "live", "node-2": "live", "node-3": "gone"})
        self.assertEqual(nodes["node-2"]["url"], f"http://127.0.0.1:{self.ports[1]}")
        self.assertGreaterEqual(nodes["node-2"]["sessions"], 1)
        r = subprocess.run([ctl, f"--address={self.bus.address}", "status"], capture_output=True, text=True)
        self.assertRegex(r.stdout, r"(?m)^NODE +STATE +RUNNING +QUEUED +SESSIONS +URL *$")
        self.assertRegex(r.stdout, r"(?m)^node-3 +gone ")


    def test_7_database_outage(self):
        # The master key needs no database: what is left to see is the directory.
        master = isol8test.MASTER
        a, b = "sess-" + uuid.uuid4().hex[:8], "sess-" + uuid.uuid4().hex[:8]
        self.run_in(self.daemons[0], a, "echo a > /sandbox/a", key=master)
        self.run_in(self.daemons[1], b, "echo b > /sandbox/b", key=master)
        self.db.stop()
        try:
            # A session held here goes on; so do runs without a session.
            self.assertEqual(self.run_in(self.daemons[0], a, "cat /sandbox/a", key=master)["stdout"], "a")
            self.assertEqual(self.daemons[0].execute({"code": "echo plain", "runtime": "bash"})["stdout"], "plain")
            # One held elsewhere needs the directory: a clear 503 within auth.timeoutMs, not a hang.
            t0 = time.monotonic()
            r = self.daemons[0].post("/execute", {"request": {"code": "cat /sandbox/b", "runtime": "bash"}, "sessionId": b})
            self.assertEqual((r.status, r.json()), (503, {"error": "Session directory unavailable"}), r)
            self.assertLess(time.monotonic() - t0, 4.5)
        finally:
            self.db.start()
        # The database is back: the servers reconnect and forward again, nothing was lost.
        deadline = time.time() + 20
        while time.time() < deadline:
            r = self.daemons[0].post("/execute", {"request": {"code": "cat /sandbox/b", "runtime": "bash"}, "sessionId": b})
            if r.status == 200:
                break
            time.sleep(0.2)
        self.assertEqual((r.status, r.json().get("stdout")), (200, "b"), r)
        self.assertEqual(self.holders(b), [1])
        for d in self.daemons:
            if d.proc.poll() is None:
                self.assertEqual(d.get("/health", key=None).status, 200)


    def test_8_relayed_websocket_peer_that_does_not_read(self):
        # A WebSocket relayed to another server whose client reads nothing while the program
        # writes a lot: the relaying server holds a bounded backlog, the run is cancelled, and
        # the relay ends (the client sees its connection closed), within the stall bounds.
        import socket
        import struct
        s = "sess-" + uuid.uuid4().hex[:8]
        # A session's limits are its first run's: room for more output than the kernel's buffers.
        r = self.daemons[0].post("/execute", {"request": {"code": "true", "runtime": "bash"}, "sessionId": s,
                                              "options": {"maxOutputSize": 16000000}})
        self.assertEqual(r.status, 200, r)
        front = self.daemons[1]
        with open(f"/proc/{front.pid()}/status") as f:
            before = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", front.port))
        c.sendall((f"GET /execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   f"Authorization: Bearer {isol8test.MASTER}\r\n\r\n").encode())
        payload = json.dumps({"type": "execute", "sessionId": s,
                              "request": {"code": "yes | head -c 12000000; sleep 100", "runtime": "bash", "timeoutMs": 120000}}).encode()
        mask = os.urandom(4)
        c.sendall(bytes([0x81, 0xFE]) + struct.pack(">H", len(payload)) + mask +
                  bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        time.sleep(5)
        with open(f"/proc/{front.pid()}/status") as f:
            during = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        self.assertLess(during - before, 16 * 1024, "the relaying server's memory followed the output")
        # The relay drops a client that took nothing of its backlog for 10 s, and with it the
        # connection to the holder, which cancels the run: well before the run's own end.
        deadline = time.time() + 40
        while time.time() < deadline and self.daemons[0].get("/queue/status").json()["current"] != 0:
            time.sleep(0.5)
        self.assertEqual(self.daemons[0].get("/queue/status").json()["current"], 0)
        c.settimeout(20)
        got, t_end = 0, time.time() + 30
        while time.time() < t_end:
            data = c.recv(65536)
            if not data:
                break
            got += len(data)
        else:
            self.fail("the relay never closed the client's connection")
        c.close()
        self.assertLess(got, 12000000, "the client got everything: it was not a peer that does not read")
        self.assertEqual(self.run_in(self.lb, s, "echo alive", key=isol8test.MASTER)["stdout"], "alive")


@unittest.skipUnless(dbservers.postgres_available() and shutil.which("haproxy"), "PostgreSQL or HAProxy missing")
class PostgresHAProxy(ClusterBase, unittest.TestCase):
    db_class = dbservers.Postgres
    balancer_class = HAProxy
    instant_revocation = True


@unittest.skipUnless(dbservers.mariadb_available() and shutil.which("nginx"), "MariaDB or nginx missing")
class MariaDBNginx(ClusterBase, unittest.TestCase):
    db_class = dbservers.MariaDB
    balancer_class = Nginx
    cache_ttl_ms = 1000


if __name__ == "__main__":
    isol8test.main()
