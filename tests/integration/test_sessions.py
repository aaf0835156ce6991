#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Persistent sessions, session files, pruning, /cleanup, shutdown and crash recovery."""

import base64
import concurrent.futures
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon, DaemonTestCase  # noqa: E402


class Sessions(DaemonTestCase):
    config = {"sessions": {"maxPerTenant": 5, "maxTotal": 6}, "poolSize": 2}

    def run_in(self, sid, code, runtime="bash", **fields):
        body = {"request": dict(fields, code=code, runtime=runtime), "sessionId": sid}
        return self.daemon.post("/execute", body)

    def tearDown(self):
        self.daemon.post("/cleanup")

    def test_files_persist_across_runs(self):
        r = self.run_in("s-persist", "echo 41 > /sandbox/n; echo made")
        self.assertEqual(r.status, 200, r)
        res = self.run_in("s-persist", "echo $(( $(cat /sandbox/n) + 1 ))").json()
        self.assertEqual(res["stdout"], "42")
        # each run is a new process (pids only grow in the session's own pid namespace)
        first, second = (int(self.run_in("s-persist", "echo $$").json()["stdout"]) for _ in range(2))
        self.assertGreater(second, first)

    def test_processes_do_not_survive_a_run(self):
        self.run_in("s-proc", "setsid sleep 1000 & disown; echo started")
        res = self.run_in("s-proc", "ps -e --no-headers | grep -c sleep || true").json()
        self.assertEqual(res["stdout"], "0")

    def test_sessions_list(self):
        self.run_in("s-list", "true")
        r = self.daemon.get("/sessions")
        self.assertEqual(r.status, 200)
        entry = [s for s in r.json()["sessions"] if s["id"] == "s-list"][0]
        self.assertEqual(entry["isActive"], False)
        self.assertRegex(entry["lastAccessedAt"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual(entry["runtime"], "bash")
        self.assertEqual(entry["executions"], 1)

    def test_delete_is_idempotent(self):
        self.run_in("s-del", "echo x > /sandbox/f")
        for _ in range(2):
            r = self.daemon.request("DELETE", "/session/s-del")
            self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        self.assertNotIn("s-del", [s["id"] for s in self.daemon.get("/sessions").json()["sessions"]])
        # a new session with the same id starts empty
        self.assertEqual(self.run_in("s-del", "ls /sandbox").json()["stdout"], "")
        r = self.daemon.request("DELETE", "/session/never-existed")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))

    def test_runtime_switch_refused(self):
        self.run_in("s-rt", "print(1)", "python")
        r = self.run_in("s-rt", "echo 1", "bash")
        self.assertEqual(r.status, 400)
        self.assertIn("Cannot switch runtime", r.json()["error"])

    def test_invalid_session_id(self):
        for sid in ("", "a/b", "x" * 200, "sp ace", "../x"):
            r = self.run_in(sid, "true")
            self.assertEqual(r.status, 400, sid)
        r = self.daemon.post("/execute", {"request": {"code": "true", "runtime": "bash"}, "sessionId": 5})
        self.assertEqual(r.status, 400)

    def test_binary_round_trip_through_file(self):
        self.run_in("s-file", "true")
        blob = bytes(range(256)) * 40
        r = self.daemon.post("/file", {"sessionId": "s-file", "path": "data/blob.bin", "content": base64.b64encode(blob).decode()})
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        res = self.run_in("s-file", "sha256sum /sandbox/data/blob.bin | cut -c1-16; stat -c %U /sandbox/data/blob.bin; "
                          "head -c 3 /dev/urandom > /sandbox/out.bin; cp /sandbox/data/blob.bin /tmp/b").json()
        import hashlib
        self.assertEqual(res["stdout"].split("\n"), [hashlib.sha256(blob).hexdigest()[:16], "sandbox"])
        r = self.daemon.get("/file?sessionId=s-file&path=/sandbox/data/blob.bin")
        self.assertEqual(base64.b64decode(r.json()["content"]), blob)
        r = self.daemon.get("/file?sessionId=s-file&path=/tmp/b")
        self.assertEqual(base64.b64decode(r.json()["content"]), blob)

    def test_file_errors(self):
        self.run_in("s-ferr", "true")
        cases = [
            ("GET", "/file?sessionId=s-ferr", None, 400, {"error": "Missing sessionId or path"}),
            ("GET", "/file?path=x", None, 400, {"error": "Missing sessionId or path"}),
            ("GET", "/file?sessionId=nope&path=x", None, 404, {"error": "Session not found"}),
            ("GET", "/file?sessionId=s-ferr&path=missing.txt", None, 404, None),
            ("GET", "/file?sessionId=s-ferr&path=../../etc/passwd", None, 400, None),
            ("POST", "/file", {"sessionId": "nope", "path": "x", "content": ""}, 404, {"error": "Session not found"}),
            ("POST", "/file", {"sessionId": "s-ferr", "path": "/etc/x", "content": ""}, 400, None),
            ("POST", "/file", {"sessionId": "s-ferr", "path": "x", "content": "!!notbase64"}, 400, None),
            ("POST", "/file", {"sessionId": "s-ferr", "path": "x"}, 400, None),
        ]
        for method, path, body, status, exact in cases:
            r = self.daemon.request(method, path, body=body)
            self.assertEqual(r.status, status, (method, path, body, r))
            if exact:
                self.assertEqual(r.json(), exact)

    def test_planted_links_and_fifos_refused(self):
        self.run_in("s-plant", "ln -s /etc/passwd /sandbox/p; ln -s /proc/1/root/etc/shadow /sandbox/q; mkfifo /sandbox/fifo; "
                    "mkdir /sandbox/d; ln -s /etc /sandbox/etc; ln /sandbox/d /sandbox/h 2>/dev/null; echo ok")
        for path in ("/sandbox/p", "/sandbox/q", "/sandbox/fifo", "/sandbox/d", "/sandbox/etc/passwd"):
            t0 = time.time()
            r = self.daemon.get(f"/file?sessionId=s-plant&path={path}")
            self.assertIn(r.status, (400, 404), (path, r))
            self.assertNotIn("root:", r.body)
            self.assertLess(time.time() - t0, 3)
        host = open("/etc/passwd").read()
        for path in ("/sandbox/p", "/sandbox/fifo", "/sandbox/etc/passwd"):
            r = self.daemon.post("/file", {"sessionId": "s-plant", "path": path, "content": base64.b64encode(b"pwned").decode()})
            self.assertEqual(r.status, 400, (path, r))
        self.assertEqual(open("/etc/passwd").read(), host)
        # a hard link made inside the sandbox to one of its own files is not written through either
        self.run_in("s-plant", "echo orig > /sandbox/a; ln /sandbox/a /sandbox/b")
        r = self.daemon.post("/file", {"sessionId": "s-plant", "path": "/sandbox/b", "content": base64.b64encode(b"x").decode()})
        self.assertEqual(r.status, 400)

    def test_runs_in_one_session_are_serialised(self):
        self.run_in("s-serial", "true")
        code = "echo start $(date +%s.%N) >> /sandbox/log; sleep 0.4; echo end $(date +%s.%N) >> /sandbox/log"
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            list(ex.map(lambda _: self.run_in("s-serial", code), range(3)))
        log = self.run_in("s-serial", "cat /sandbox/log").json()["stdout"].split("\n")
        kinds = [l.split()[0] for l in log]
        self.assertEqual(kinds, ["start", "end"] * 3)

    def test_session_limits(self):
        for i in range(5):
            self.assertEqual(self.run_in(f"lim-{i}", "true").status, 200)
        r = self.run_in("lim-over", "true")
        self.assertEqual(r.status, 429)
        self.assertIn("Too many sessions", r.json()["error"])

    def test_cleanup(self):
        self.run_in("c-1", "true")
        self.run_in("c-2", "true")
        r = self.daemon.post("/cleanup")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertTrue(body["ok"])
        self.assertEqual(body["destroyed"]["sessions"], 2)
        # upstream's shape, which its clients and tests read
        self.assertEqual(body["sessions"], {"removed": 2, "failed": 0, "errors": []})
        self.assertEqual(set(body["containers"]), {"removed", "failed", "errors"})
        self.assertEqual(body["containers"]["removed"], body["destroyed"]["sandboxes"])
        self.assertNotIn("images", body)
        self.assertEqual(self.daemon.get("/sessions").json()["sessions"], [])
        for path, body in (("/cleanup?images=true", None), ("/cleanup", {"images": True})):
            r = self.daemon.post(path, body)
            self.assertEqual(r.json()["images"], {"removed": 0, "failed": 0, "errors": []}, path)
        r = self.daemon.post("/cleanup", {"images": "yes"})
        self.assertEqual((r.status, r.json()), (400, {"error": '"images" must be a boolean'}))

    def test_python_file_in_a_session(self):
        for _ in range(2):
            r = self.daemon.post("/execute", {"request": {"code": "print(__file__)", "runtime": "python"}, "sessionId": "s-pyfile"})
            self.assertEqual(r.json()["stdout"], "/sandbox/main.py", r)

    def test_destroy_while_running(self):
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(self.run_in, "s-busy", "sleep 30")
            time.sleep(1)
            self.assertTrue([s for s in self.daemon.get("/sessions").json()["sessions"] if s["id"] == "s-busy"][0]["isActive"])
            r = self.daemon.request("DELETE", "/session/s-busy")
            self.assertEqual(r.status, 200)
            res = f.result(timeout=10)
            self.assertEqual(res.json()["exitCode"], 137)
        self.assertEqual(isol8test.sandbox_user_processes(), [])

    def test_streaming_in_a_session(self):
        import json
        import subprocess
        self.run_in("s-sse", "echo from-buffered > /sandbox/f")
        out = subprocess.run(["curl", "-sN", "-X", "POST", f"http://127.0.0.1:{self.daemon.port}/execute/stream",
                              "-H", f"Authorization: Bearer {self.daemon.key}", "-d",
                              json.dumps({"request": {"code": "cat /sandbox/f", "runtime": "bash"}, "sessionId": "s-sse"})],
                             capture_output=True, text=True).stdout
        self.assertIn('"data":"from-buffered\\n"', out)




class Pruning(DaemonTestCase):
    config = {"cleanup": {"autoPrune": True, "maxContainerAgeMs": 500, "intervalMs": 200}}

    def test_idle_sessions_are_pruned(self):
        self.daemon.post("/execute", {"request": {"code": "true", "runtime": "bash"}, "sessionId": "p-idle"})
        self.assertEqual(len(self.daemon.get("/sessions").json()["sessions"]), 1)
        time.sleep(1.5)
        self.assertEqual(self.daemon.get("/sessions").json()["sessions"], [])

    def test_running_sessions_are_not_pruned(self):
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(self.daemon.post, "/execute", {"request": {"code": "sleep 2; echo alive", "runtime": "bash"},
                                                         "sessionId": "p-busy"})
            time.sleep(1.5)
            self.assertEqual([s["id"] for s in self.daemon.get("/sessions").json()["sessions"]], ["p-busy"])
            self.assertEqual(f.result().json()["stdout"], "alive")


class Lifecycle(unittest.TestCase):
    def test_sigterm_with_live_sessions(self):
        d = Daemon().start()
        pid = d.pid()
        for i in range(3):
            d.post("/execute", {"request": {"code": "echo x > /sandbox/f", "runtime": "bash"}, "sessionId": f"live-{i}"})
        self.assertTrue(isol8test.sandbox_processes())
        self.assertEqual(d.stop(), 0)
        isol8test.assert_nothing_left(pid)

    def test_sigkill_then_restart(self):
        d = Daemon().start()
        pid = d.pid()
        d.post("/execute", {"request": {"code": "echo x > /sandbox/f", "runtime": "bash"}, "sessionId": "doomed"})
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()

        def check(d2):
            self.assertEqual(d2.get("/sessions").json()["sessions"], [])
            self.assertEqual(d2.execute({"code": "echo next", "runtime": "bash"})["stdout"], "next")
        isol8test.restart_after_sigkill(self, pid, check)


if __name__ == "__main__":
    isol8test.main()
