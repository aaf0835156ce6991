# SPDX-License-Identifier: MIT
"""Helpers for the integration and security tests: start the real isol8 binary, talk HTTP to it
with the standard library, and report unittest results as TAP for meson."""

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ISOL8 = os.path.abspath(os.environ.get("ISOL8_BIN", os.path.join(os.path.dirname(__file__), "../../build/src/isol8")))
MASTER = "test-master-key-0123456789"
UID_BASE = 1000000
UID_SPAN = 1024 * 65536


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raw_post(path, body, close=False):
    """The bytes of a JSON POST with the master key (body: bytes), for clients on a bare socket."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {MASTER}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode() + body


def raw_exchange(port, data, timeout=5, one_response=False, half_close=False):
    """Sends raw bytes to the daemon and returns what it answers until it closes (or timeout);
    with one_response, until one complete response (head and Content-Length body) is in; with
    half_close, the sending side is shut once the bytes are sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
            if one_response and b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                cl = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except socket.timeout:
        pass
    s.close()
    return out


def read_pty(fd, done, timeout=10, tick=None):
    """Reads a pseudo-terminal until done(output) or timeout or EOF; tick(elapsed) is called on
    every wake-up (to type at the terminal, say). Returns what was read."""
    out = b""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if tick:
            tick(time.time() - t0)
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if done(out):
            break
    return out


def sandbox_processes():
    """pids of processes running with a sandbox uid (the uid range the daemon maps)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        if UID_BASE <= uid < UID_BASE + UID_SPAN:
                            found.append(int(d))
                        break
        except OSError:
            pass
    return found


def own_cgroup_dirs(pid):
    """Sandbox cgroup directories a daemon with this pid created (v1 and v2)."""
    dirs = []
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else []):
            base = f"/sys/fs/cgroup/{ctrls}{path.rstrip('/')}/isol8/d{pid}"
            if not os.path.isdir(f"/sys/fs/cgroup/{ctrls}"):
                base = f"/sys/fs/cgroup/{c}{path.rstrip('/')}/isol8/d{pid}"
            if os.path.exists(base):
                dirs.append(base)
    return dirs


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


async def ws_collect(ws):
    """Every JSON message of a WebSocket (python3-websockets) until the server closes it."""
    import websockets
    events = []
    try:
        async for m in ws:
            events.append(json.loads(m))
    except websockets.exceptions.ConnectionClosed:
        pass
    return events


class Daemon:
    """One isol8 serve process on a loopback port."""

    def __init__(self, config=None, key=MASTER, args=(), env=None, activation=False, port=None, files=None):
        self.dir = tempfile.TemporaryDirectory(prefix="isol8-test-")
        # {"/etc/hosts": "text"}: the daemon sees these files in a mount namespace of its own
        # (names for the proxy to resolve without touching the machine's files).
        self.files = files or {}
        self.config = config
        self.key = key
        self.args = list(args)
        self.env = env
        self.activation = activation
        self.port = port if port is not None else free_port()
        self.proc = None
        self.stdout_lines = []

    def command(self):
        cmd = [ISOL8, "serve", "--host", "127.0.0.1"]
        if self.config is not None:
            path = os.path.join(self.dir.name, "isol8.config.json")
            with open(path, "w") as f:
                f.write(self.config if isinstance(self.config, str) else json.dumps(self.config))
            cmd += ["--config", path]
        if self.key is not None:
            cmd += ["--key", self.key]
        if not self.activation:
            cmd += ["--port", str(self.port)]
        cmd += self.args
        if self.files:
            binds = []
            for i, (target, text) in enumerate(sorted(self.files.items())):
                src = os.path.join(self.dir.name, f"bind-{i}")
                with open(src, "w") as f:
                    f.write(text)
                binds.append(f"mount --bind {src} {target}")
            cmd = ["unshare", "-m", "sh", "-c", " && ".join(binds) + ' && exec "$@"', "sh"] + cmd
        if self.activation:
            cmd = ["systemd-socket-activate", "-l", f"127.0.0.1:{self.port}",
                   "--fdname=http"] + cmd
        return cmd

    def start(self, wait=True):
        env = dict(os.environ)
        env.pop("ISOL8_API_KEY", None)
        env.pop("ISOL8_PORT", None)
        env.pop("PORT", None)
        env.pop("NOTIFY_SOCKET", None)
        if self.env:
            env.update(self.env)
        self.stderr = open(os.path.join(self.dir.name, "stderr.log"), "w+")
        self.proc = subprocess.Popen(self.command(), cwd=self.dir.name, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        if self.activation:
            # The socket is there at once; the daemon starts on the first connection.
            while time.time() < deadline:
                try:
                    if self.get("/health", key=None).status == 200:
                        return
                except OSError:
                    time.sleep(0.05)
            raise AssertionError("daemon under socket activation never answered: " + self.stderr_text())
        line = self.read_line(timeout)
        if not line or "listening on" not in line:
            raise AssertionError(f"daemon did not start: {line!r} {self.stderr_text()}")
        self.start_line = line

    def read_line(self, timeout=15):
        deadline = time.time() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                c = os.read(fd, 1)
                if not c:
                    break
                if c == b"\n":
                    line = buf.decode()
                    self.stdout_lines.append(line)
                    return line
                buf += c
            elif self.proc.poll() is not None:
                break
        return buf.decode() if buf else None

    def stderr_text(self):
        try:
            self.stderr.flush()
            with open(self.stderr.name) as f:
                return f.read()
        except Exception:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("daemon did not stop within %ss" % timeout)
        finally:
            self.proc.stdout.close()
        return rc

    def pid(self):
        return self.proc.pid

    def request(self, method, path, body=None, key="master", headers=None, raw=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if key == "master":
            key = self.key
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        out = Response(resp.status, dict(resp.getheaders()), resp.read().decode("utf-8"))
        conn.close()
        return out

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def execute(self, request, options=None, expect=200, **kw):
        body = {"request": request}
        if options is not None:
            body["options"] = options
        r = self.post("/execute", body, **kw)
        if expect is not None and r.status != expect:
            raise AssertionError(f"expected {expect}, got {r}")
        return r.json()


class DaemonTestCase(unittest.TestCase):
    """A test class with one daemon for all its tests (started once: it is the expensive part)."""

    config = None
    daemon_args = ()
    daemon_files = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(config=cls.config, args=cls.daemon_args, files=cls.daemon_files).start()

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        assert rc == 0, f"daemon exit code {rc}: {cls.daemon.stderr_text()[-2000:]}"
        assert_nothing_left(pid)

    def run_code(self, code, runtime="bash", options=None, **fields):
        req = dict(fields)
        req["code"] = code
        req["runtime"] = runtime
        return self.daemon.execute(req, options)

    def assert_healthy(self):
        r = self.daemon.get("/health", key=None)
        self.assertEqual(r.status, 200)
        res = self.run_code("echo still-fine")
        self.assertEqual(res["stdout"], "still-fine")
        self.assertEqual(res["exitCode"], 0)


def assert_nothing_left(pid, timeout=5):
    deadline = time.time() + timeout
    while True:
        procs = sandbox_processes()
        dirs = own_cgroup_dirs(pid)
        if not procs and not dirs:
            return
        if time.time() > deadline:
            raise AssertionError(f"left behind: processes {procs}, cgroups {dirs}")
        time.sleep(0.05)


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}{extra}", flush=True)

    def addSuccess(self, test):
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        for l in self._exc_info_to_string(err, test).splitlines():
            print("# " + l)

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        for l in self._exc_info_to_string(err, test).splitlines():
            print("# " + l)

    def addSkip(self, test, reason):
        self._line(True, test, f" # SKIP {reason}")


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    result = TapResult()
    try:
        suite.run(result)
    finally:
        print(f"1..{result.n}", flush=True)
    sys.exit(0 if result.wasSuccessful() else 1)


def sandbox_user_processes():
    """pids of processes running as a sandbox's unprivileged user (not the sandbox inits)."""
    # Each uid read once: a process that ends between two reads has none the second time.
    uids = ((p, _uid_of(p)) for p in sandbox_processes())
    return [p for p, uid in uids if uid is not None and (uid - UID_BASE) % 65536 != 0]


def _uid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def restart_after_sigkill(test, pid, check):
    """After a daemon with this pid was SIGKILLed: its sandboxes must die with it while its
    cgroups stay behind, until the next daemon reclaims them before serving. check(d2) then
    asserts what the new daemon must show; the new daemon is stopped and must leave nothing."""
    deadline = time.time() + 5
    while sandbox_processes() and time.time() < deadline:
        time.sleep(0.05)
    test.assertEqual(sandbox_processes(), [])
    test.assertTrue(own_cgroup_dirs(pid))
    d2 = Daemon().start()
    try:
        test.assertEqual(own_cgroup_dirs(pid), [])
        test.assertIn("reclaim", d2.stderr_text())
        check(d2)
    finally:
        pid2 = d2.pid()
        test.assertEqual(d2.stop(), 0)
        assert_nothing_left(pid2)


PRIVATE_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """A dbus-daemon of its own in directory (a socket anyone may use), for a daemon started with
    ["--bus", bus.address]; wait_for_name() once that daemon is up."""

    def __init__(self, directory):
        sock, conf = os.path.join(directory, "bus"), os.path.join(directory, "bus.conf")
        with open(conf, "w") as f:
            f.write(PRIVATE_BUS_CONFIG.format(sock=sock))
        out = subprocess.run(["dbus-daemon", f"--config-file={conf}", "--fork", "--print-address=1", "--print-pid=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        self.address, self.pid = out[0], int(out[1])
        os.chmod(sock, 0o777)

    def wait_for_name(self, name="org.isol8.Daemon1"):
        for _ in range(100):
            if subprocess.run(["busctl", f"--address={self.address}", "status", name], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
