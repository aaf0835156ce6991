#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The isol8 client (isol8 run/login/logout/session/health, libisol8) against the real daemon,
including the SSE fallback behind a proxy that does not pass WebSocket upgrades."""

import json
import os
import pty
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import MASTER, DaemonTestCase  # noqa: E402


class NoUpgradeProxy(socketserver.ThreadingTCPServer):
    """A plain HTTP/1.1 proxy that forwards requests but drops Upgrade: the server then sees an
    ordinary request (as behind many old proxies)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target_port):
        self.target_port = target_port
        self.upgrades_refused = 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if any(l.lower().startswith(b"upgrade:") for l in lines[1:]):
            self.server.upgrades_refused += 1
        lines = [l for l in lines if not l.lower().startswith((b"upgrade:", b"connection:", b"sec-websocket"))]
        length = [int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length:")]
        while length and len(body) < length[0]:
            body += self.request.recv(65536)
        lines.append(b"Connection: close")
        up = socket.create_connection(("127.0.0.1", self.server.target_port))
        up.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        while True:
            chunk = up.recv(65536)
            if not chunk:
                break
            self.request.sendall(chunk)
        up.close()


class Client(DaemonTestCase):
    config = {"poolSize": 2}

    def isol8(self, *args, input=None, env=None, timeout=60):
        e = dict(os.environ)
        e.pop("ISOL8_API_KEY", None)
        e["HOME"] = self.home
        e.update(env or {})
        return subprocess.run([isol8test.ISOL8] + list(args), input=input, capture_output=True, text=True, env=e,
                              timeout=timeout)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.home = cls.tmp.name
        cls.url = f"http://127.0.0.1:{cls.daemon.port}"

    def run_remote(self, *args, **kw):
        return self.isol8("run", "--host", self.url, "--key", MASTER, *args, **kw)

    def test_streamed_run_and_exit_code(self):
        r = self.run_remote("-e", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(7)", "-r", "python")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertEqual(r.stdout, "out\n")
        self.assertIn("err", r.stderr)

    def test_buffered_run(self):
        r = self.run_remote("--no-stream", "--cmd", "echo buffered; exit 3")
        self.assertEqual((r.returncode, r.stdout), (3, "buffered\n"))

    def test_file_argument_and_runtime_guess(self):
        for name, code, want in (("a.py", "print(6*7)", "42"), ("b.js", "console.log(2+3)", "5"), ("c.sh", "echo $((3*3))", "9")):
            path = os.path.join(self.home, name)
            with open(path, "w") as f:
                f.write(code)
            r = self.run_remote(path)
            self.assertEqual(r.stdout.strip(), want, (name, r.stderr))
        r = self.run_remote(os.path.join(self.home, "a.py"), "--out", os.path.join(self.home, "out.txt"))
        self.assertEqual(open(os.path.join(self.home, "out.txt")).read(), "42\n")
        r = self.isol8("run", "--host", self.url, "--key", MASTER, "/nonexistent.py")
        self.assertEqual(r.returncode, 1)

    def test_code_from_stdin(self):
        r = self.run_remote("-r", "python", input="print('piped code')")
        self.assertEqual(r.stdout, "piped code\n")

    def test_stdin_from_a_pipe_and_option(self):
        r = self.run_remote("-e", "import sys; print(sys.stdin.read().upper())", "-r", "python", input="hello\n")
        self.assertEqual(r.stdout.strip(), "HELLO")
        r = self.run_remote("--stdin", "given", "--cmd", "cat")
        self.assertEqual(r.stdout.strip(), "given")

    def test_stdin_from_the_terminal(self):
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["HOME"] = self.home
            os.execv(isol8test.ISOL8, [isol8test.ISOL8, "run", "--host", self.url, "--key", MASTER, "--cmd",
                                       "read -r line; echo \"echo:$line\""])
        typed = []

        def type_once(elapsed):
            if not typed and elapsed > 1:
                os.write(fd, b"typed-at-the-terminal\n")
                typed.append(True)
        out = isol8test.read_pty(fd, lambda o: b"echo:typed-at-the-terminal" in o, timeout=20, tick=type_once)
        _, status = os.waitpid(pid, 0)
        self.assertIn(b"echo:typed-at-the-terminal", out)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    def test_options_reach_the_server(self):
        r = self.run_remote("--cmd", "sleep 5", "--timeout", "300")
        self.assertEqual(r.returncode, 137)
        self.assertIn("TIMED OUT", r.stderr)
        r = self.run_remote("--cmd", "echo $TOKEN", "--secret", "TOKEN=hunter2")
        self.assertEqual(r.stdout.strip(), "***")
        r = self.run_remote("--cmd", "true", "--memory", "lots")
        self.assertEqual(r.returncode, 2)

    def test_persistent_session(self):
        r = self.run_remote("--persistent", "--cmd", "echo kept > /sandbox/k")
        sid = [l.split()[-1] for l in r.stderr.splitlines() if "session" in l][0]
        r = self.run_remote("--session-id", sid, "--cmd", "cat /sandbox/k")
        self.assertEqual(r.stdout.strip(), "kept")
        r = self.isol8("session", "list", "--host", self.url, "--key", MASTER)
        self.assertIn(sid, r.stdout)
        r = self.isol8("session", "stop", sid, "--host", self.url, "--key", MASTER)
        self.assertEqual(r.returncode, 0)
        self.assertNotIn(sid, self.isol8("session", "list", "--host", self.url, "--key", MASTER).stdout)

    def test_wrong_key_and_unreachable_host(self):
        r = self.isol8("run", "--host", self.url, "--key", "wrong", "--cmd", "true")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Invalid API key", r.stderr)
        r = self.isol8("run", "--host", self.url, "--cmd", "true")
        self.assertIn("Missing Authorization header", r.stderr)
        r = self.isol8("run", "--host", "http://127.0.0.1:9", "--key", MASTER, "--cmd", "true")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach http://127.0.0.1:9", r.stderr)
        r = self.isol8("health", "--host", self.url)
        self.assertIn("ok: isol8 server 0.1.0", r.stdout)

    def test_local_run(self):
        r = self.isol8("run", "-e", "print('local', 1 + 1)", "-r", "python")
        self.assertEqual((r.returncode, r.stdout), (0, "local 2\n"), r.stderr)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", isol8test.ISOL8, "run", "--cmd", "true"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs root", r.stderr)

    def test_sse_fallback_behind_a_proxy(self):
        proxy = NoUpgradeProxy(self.daemon.port)
        t = threading.Thread(target=proxy.serve_forever, daemon=True)
        t.start()
        try:
            url = f"http://127.0.0.1:{proxy.server_address[1]}"
            r = self.isol8("run", "--host", url, "--key", MASTER, "-e", "import sys; print('through the proxy'); sys.exit(4)", "-r", "python")
            self.assertEqual((r.returncode, r.stdout), (4, "through the proxy\n"), r.stderr)
            self.assertGreaterEqual(proxy.upgrades_refused, 1)
        finally:
            proxy.shutdown()
            proxy.server_close()


class Login(DaemonTestCase):
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.daemon = isol8test.Daemon(args=["--auth-db", os.path.join(cls.tmp.name, "k.db")]).start()
        cls.url = f"http://127.0.0.1:{cls.daemon.port}"

    def isol8(self, *args):
        e = dict(os.environ, HOME=self.tmp.name)
        e.pop("ISOL8_API_KEY", None)
        return subprocess.run([isol8test.ISOL8] + list(args), capture_output=True, text=True, env=e, timeout=60)

    def test_login_logout(self):
        r = self.isol8("login", "--host", self.url, "--key", MASTER, "--name", "laptop", "--ttl", "600000")
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.tmp.name, ".isol8", "credentials.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        creds = json.load(open(path))
        token = creds["hosts"][self.url]["token"]
        self.assertRegex(token, r"^isol8_[0-9a-f]{64}$")
        keys = self.daemon.get("/auth/keys").json()["keys"]
        self.assertIn("laptop", [k["name"] for k in keys])
        # the stored key is used when no other is given
        r = self.isol8("run", "--host", self.url, "--cmd", "echo with-stored-key")
        self.assertEqual(r.stdout.strip(), "with-stored-key", r.stderr)
        r = self.isol8("logout", "--host", self.url)
        self.assertEqual(r.returncode, 0)
        self.assertNotIn(self.url, json.load(open(path))["hosts"])
        r = self.isol8("run", "--host", self.url, "--cmd", "true")
        self.assertIn("Missing Authorization header", r.stderr)
        r = self.isol8("login", "--host", self.url, "--key", "not-the-master")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Invalid API key", r.stderr)


if __name__ == "__main__":
    isol8test.main()
