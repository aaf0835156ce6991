#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""isol8 serve as an HTTP daemon: auth, routing, limits, ports, activation, notify, shutdown."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import MASTER, Daemon, DaemonTestCase, assert_nothing_left, free_port  # noqa: E402


class HttpBasics(DaemonTestCase):
    config = {"limits": {"maxBodyBytes": 4096}, "http": {"maxHeaderBytes": 8192, "connectionTimeoutSec": 2}}

    def test_health_is_public(self):
        r = self.daemon.get("/health", key=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok", "version": "0.1.0"})
        self.assertEqual(r.headers.get("Content-Type"), "application/json")

    def test_missing_authorization_is_401(self):
        r = self.daemon.get("/queue/status", key=None)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json(), {"error": "Missing Authorization header"})

    def test_wrong_key_is_403(self):
        r = self.daemon.get("/queue/status", key="nope")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json(), {"error": "Invalid API key"})

    def test_prefix_of_key_is_403(self):
        self.assertEqual(self.daemon.get("/queue/status", key=MASTER[:-1]).status, 403)
        self.assertEqual(self.daemon.get("/queue/status", key=MASTER + "x").status, 403)

    def test_other_scheme_is_403(self):
        r = self.daemon.get("/queue/status", key=None, headers={"Authorization": f"Basic {MASTER}"})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json(), {"error": "Invalid API key"})

    def test_scheme_is_case_insensitive(self):
        r = self.daemon.get("/queue/status", key=None, headers={"Authorization": f"bEaReR {MASTER}"})
        self.assertEqual(r.status, 200)

    def test_unknown_path_is_404_after_auth(self):
        self.assertEqual(self.daemon.get("/nope", key=None).status, 401)
        self.assertEqual(self.daemon.get("/nope", key="bad").status, 403)
        r = self.daemon.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json(), {"error": "Not found"})

    def test_wrong_method_is_405(self):
        r = self.daemon.get("/execute")
        self.assertEqual(r.status, 405)
        self.assertIn("error", r.json())
        r = self.daemon.post("/health", {}, key=None)
        self.assertIn(r.status, (401, 405))

    def test_queue_status_shape(self):
        r = self.daemon.get("/queue/status")
        self.assertEqual(r.status, 200)
        q = r.json()
        self.assertEqual(q["max"], 10)
        self.assertEqual(q["current"], 0)
        self.assertEqual(q["available"], 10)
        self.assertEqual(q["pending"], 0)
        self.assertEqual(q["queue"], {"maxSize": 100, "timeoutMs": 30000})

    def test_huge_body_is_413(self):
        r = self.daemon.post("/execute", raw=b"x" * 10000, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 413)
        self.assertIn("too large", r.json()["error"])
        self.assert_healthy()

    def test_huge_chunked_body_is_413(self):
        body = b"".join(b"%x\r\n%s\r\n" % (1000, b"y" * 1000) for _ in range(10)) + b"0\r\n\r\n"
        out = isol8test.raw_exchange(self.daemon.port, b"POST /execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                     MASTER.encode() + b"\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n" +
                                     body, one_response=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:200])
        self.assert_healthy()

    def test_garbage_json_is_400(self):
        r = self.daemon.post("/execute", raw=b"{not json", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {"error": "Invalid JSON body"})
        self.assert_healthy()

    def test_no_request_object_is_400(self):
        r = self.daemon.post("/execute", {"code": "print(1)"})
        self.assertEqual(r.status, 400)
        self.assertIn("request", r.json()["error"])
        r = self.daemon.post("/execute", raw=b"", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assert_healthy()

    def test_deep_nesting_is_400(self):
        r = self.daemon.post("/execute", raw=b"[" * 2000 + b"]" * 2000, headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertIn("nested", r.json()["error"])
        self.assert_healthy()

    def test_huge_header_is_refused(self):
        r = self.daemon.get("/health", key=None, headers={"X-Big": "a" * 20000})
        self.assertIn(r.status, (413, 431))
        self.assert_healthy()

    def test_slowloris_connection_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        data = s.recv(1000)  # the server closes the idle connection
        self.assertEqual(data, b"")
        self.assertLess(time.time() - t0, 8)
        s.close()
        self.assert_healthy()

    def test_keepalive_serves_many_requests(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        for _ in range(50):
            conn.request("GET", "/health")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        conn.close()

    def test_idle_daemon_does_not_spin(self):
        def cpu_ticks():
            with open(f"/proc/{self.daemon.pid()}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        before = cpu_ticks()
        time.sleep(1.5)
        # A busy loop would burn ~150 ticks; an idle event loop a handful at most.
        self.assertLess(cpu_ticks() - before, 15)


class Startup(unittest.TestCase):
    def run_daemon(self, args, env=None, timeout=10):
        e = dict(os.environ)
        for k in ("ISOL8_API_KEY", "ISOL8_PORT", "PORT"):
            e.pop(k, None)
        e.update(env or {})
        with tempfile.TemporaryDirectory() as d:
            return subprocess.run([isol8test.ISOL8, "serve", "--host", "127.0.0.1"] + args, cwd=d, env=e,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def test_refuses_to_start_without_key(self):
        r = self.run_daemon([])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--key", r.stderr)
        self.assertIn("ISOL8_API_KEY", r.stderr)

    def test_key_from_environment(self):
        port = free_port()
        d = Daemon(key=None, env={"ISOL8_API_KEY": "env-key"}, port=port).start()
        try:
            self.assertEqual(d.get("/queue/status", key="env-key").status, 200)
            self.assertEqual(d.get("/queue/status", key=MASTER).status, 403)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_bad_config_type_stops_startup_naming_the_key(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump({"defaults": {"timeoutMs": "soon"}}, f)
            f.flush()
            r = self.run_daemon(["--key", "k", "--config", f.name, "--port", str(free_port())])
        self.assertEqual(r.returncode, 1)
        self.assertIn("defaults.timeoutMs", r.stderr)

    def test_malformed_config_stops_startup(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write("{ nope")
            f.flush()
            r = self.run_daemon(["--key", "k", "--config", f.name, "--port", str(free_port())])
        self.assertEqual(r.returncode, 1)
        self.assertIn("JSON", r.stderr)

    def test_unknown_config_key_is_a_warning(self):
        d = Daemon(config={"frobnicate": True, "maxConcurrent": 3}).start()
        try:
            self.assertEqual(d.get("/queue/status").json()["max"], 3)
            self.assertIn("frobnicate", d.stderr_text())
        finally:
            self.assertEqual(d.stop(), 0)

    def test_config_found_in_working_directory(self):
        d = Daemon()
        with open(os.path.join(d.dir.name, "isol8.config.json"), "w") as f:
            json.dump({"maxConcurrent": 4}, f)
        d.start()
        try:
            self.assertEqual(d.get("/queue/status").json()["max"], 4)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_start_line(self):
        d = Daemon().start()
        try:
            self.assertEqual(d.start_line, f"isol8 server v0.1.0 listening on http://localhost:{d.port}")
        finally:
            self.assertEqual(d.stop(), 0)

    def port_of(self, d):
        return int(d.start_line.rsplit(":", 1)[1])

    def test_port_precedence(self):
        p1, p2, p3 = free_port(), free_port(), free_port()
        # ISOL8_PORT beats PORT
        d = Daemon(env={"ISOL8_PORT": str(p1), "PORT": str(p2)})
        d.args = []
        d.activation = False
        cmd = d.command()
        cmd.remove("--port")
        cmd.remove(str(d.port))
        d.command = lambda: cmd
        d.port = p1
        d.start()
        try:
            self.assertEqual(self.port_of(d), p1)
            self.assertEqual(d.get("/health", key=None).status, 200)
        finally:
            self.assertEqual(d.stop(), 0)
        # PORT alone
        d = Daemon(env={"PORT": str(p2)})
        cmd2 = [c for c in d.command() if c not in ("--port", str(d.port))]
        d.command = lambda: cmd2
        d.port = p2
        d.start()
        try:
            self.assertEqual(self.port_of(d), p2)
        finally:
            self.assertEqual(d.stop(), 0)
        # --port beats both
        d = Daemon(env={"ISOL8_PORT": str(p1), "PORT": str(p2)}, port=p3).start()
        try:
            self.assertEqual(self.port_of(d), p3)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_default_port_is_3000(self):
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", 3000))
        except OSError:
            self.skipTest("port 3000 is taken on this machine")
        probe.close()
        d = Daemon()
        cmd = [c for c in d.command() if c not in ("--port", str(d.port))]
        d.command = lambda: cmd
        d.port = 3000
        d.start()
        try:
            self.assertEqual(self.port_of(d), 3000)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_usage_errors_go_to_stderr_with_a_hint(self):
        for args, hint in ((["frobnicate"], "see isol8 --help"), ([], "see isol8 --help"),
                           (["run", "--bogus"], "see isol8 run --help"), (["serve", "--bogus"], "see isol8 serve --help")):
            r = subprocess.run([isol8test.ISOL8] + args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, "", args)
            self.assertIn(hint, r.stderr, args)
        r = subprocess.run([isol8test.ISOL8, "serve", "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("isol8 serve [OPTIONS]"))
        self.assertIn("--auth-db", r.stdout)
        self.assertNotIn("isol8 login", r.stdout)

    def test_no_priority_prefixes_on_a_terminal(self):
        import pty
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.pop("ISOL8_API_KEY", None)
            os.execv(isol8test.ISOL8, [isol8test.ISOL8, "serve", "--host", "127.0.0.1", "--port", str(busy), "--key", "k",
                                       "--bus", "none"])
        try:
            out = isol8test.read_pty(fd, lambda o: b"already in use" in o and b"\n" in o.split(b"already in use", 1)[1])
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            blocker.close()
        text = out.decode(errors="replace")
        self.assertIn("already in use", text)     # the start-up error reached the terminal...
        self.assertNotRegex(text, r"(^|\n)<\d>")  # ...without journald's "<3>"

    def test_invalid_port_is_refused(self):
        r = self.run_daemon(["--key", "k", "--port", "70000"])
        self.assertEqual(r.returncode, 1)
        r = self.run_daemon(["--key", "k"], env={"ISOL8_PORT": "abc"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("ISOL8_PORT", r.stderr)

    def test_busy_port_fails_without_terminal_and_port_0_picks_one(self):
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        try:
            # like any daemon: a busy port is an error, not a silent move
            r = self.run_daemon(["--key", "k", "--port", str(busy)])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"Port {busy} is already in use", r.stderr)
            self.assertIn("--port 0", r.stderr)
            # ...unless the user asks for any free port
            d = Daemon(port=0).start()
            try:
                got = self.port_of(d)
                self.assertNotIn(got, (0, busy))
                d.port = got
                self.assertEqual(d.get("/health", key=None).status, 200)
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            blocker.close()

    def test_sigint_also_stops_cleanly(self):
        d = Daemon().start()
        pid = d.pid()
        self.assertEqual(d.stop(signal.SIGINT), 0)
        assert_nothing_left(pid)


class Activation(unittest.TestCase):
    def test_socket_activation(self):
        d = Daemon(activation=True).start()
        try:
            r = d.get("/health", key=None)
            self.assertEqual(r.status, 200)
            self.assertEqual(d.get("/queue/status").status, 200)
            self.assertEqual(d.get("/queue/status", key=None).status, 401)
            out = d.read_line(5)
            self.assertEqual(out, f"isol8 server v0.1.0 listening on http://localhost:{d.port}")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_idle_exit(self):
        # With nothing to do for idleExitSec the daemon exits 0 (systemd starts it again on the
        # next connection); a live session keeps it.
        d = Daemon(activation=True, config={"idleExitSec": 2, "poolSize": 1}).start()
        try:
            r = d.post("/execute", {"request": {"cmd": "true"}, "sessionId": "keep"})
            self.assertEqual(r.status, 200)
            time.sleep(4)
            self.assertEqual(d.get("/health", key=None).status, 200)
            self.assertEqual(d.request("DELETE", "/session/keep").status, 200)
            deadline = time.time() + 10
            while d.proc.poll() is None and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(d.proc.poll(), 0, d.stderr_text())
            self.assertIn("Idle for 2 s: exiting", d.stderr_text())
        finally:
            if d.proc.poll() is None:
                d.stop()

    def test_idle_exit_default_on_under_activation_only(self):
        d = Daemon(config={"poolSize": 1}).start()
        try:
            self.assertNotIn("idleExitSec", d.stderr_text())   # by hand: never
        finally:
            self.assertEqual(d.stop(), 0)
        d = Daemon(activation=True, config={"poolSize": 1}).start()
        try:
            self.assertIn("Exiting after 300 s without connections, runs or sessions (idleExitSec).", d.stderr_text())
        finally:
            self.assertEqual(d.stop(), 0)

    def test_reload_on_sighup(self):
        d = Daemon(config={"poolSize": 1, "limits": {"maxTimeoutMs": 1000}}).start()
        try:
            req = {"request": {"cmd": "true"}, "options": {"timeoutMs": 5000}}
            self.assertEqual(d.post("/execute", req).status, 400)
            with open(os.path.join(d.dir.name, "isol8.config.json"), "w") as f:
                json.dump({"poolSize": 1, "limits": {"maxTimeoutMs": 10000}}, f)
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "Reloaded the configuration" not in d.stderr_text() and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(d.post("/execute", req).status, 200)
            # a broken file keeps what is in use
            with open(os.path.join(d.dir.name, "isol8.config.json"), "w") as f:
                f.write("{broken")
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "Reload failed" not in d.stderr_text() and time.time() < deadline:
                time.sleep(0.1)
            self.assertIn("Reload failed", d.stderr_text())
            self.assertEqual(d.post("/execute", req).status, 200)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_sd_notify_ready_watchdog_stopping(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "notify")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(10)
            d = Daemon(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
            d.start()
            env_ok = True
            try:
                msgs = []
                deadline = time.time() + 5
                while time.time() < deadline and not ("READY=1" in "".join(msgs) and "WATCHDOG=1" in "".join(msgs)):
                    msgs.append(sock.recv(4096).decode())
                text = "".join(msgs)
                self.assertIn("READY=1", text)
                self.assertIn("STATUS=Listening on port", text)
                self.assertIn("WATCHDOG=1", text)
            finally:
                d.proc.send_signal(signal.SIGTERM)
                stop_msgs = []
                try:
                    while True:
                        m = sock.recv(4096).decode()
                        stop_msgs.append(m)
                        if "STOPPING=1" in m:
                            break
                except socket.timeout:
                    env_ok = False
                self.assertEqual(d.stop(), 0)
                sock.close()
            self.assertTrue(env_ok, "no STOPPING=1 after SIGTERM")


if __name__ == "__main__":
    isol8test.main()
