#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""org.isol8.Daemon1 on a private dbus-daemon: every method and property through busctl and
isol8ctl, error names, access control for an unprivileged caller, signals, introspection."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.dom.minidom

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
ISOL8CTL = os.path.join(os.path.dirname(isol8test.ISOL8), "isol8ctl")
NAME, PATH, IFACE = "org.isol8.Daemon1", "/org/isol8/Daemon1", "org.isol8.Daemon1.Manager"


class Bus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="isol8-bus-")
        os.chmod(cls.tmp, 0o755)
        cls.bus = isol8test.PrivateBus(cls.tmp)
        cls.address = cls.bus.address
        cls.daemon = Daemon(args=["--bus", cls.address, "--auth-db", os.path.join(cls.tmp, "keys.db")]).start()
        cls.bus.wait_for_name(NAME)

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        cls.bus.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, cls.daemon.stderr_text()[-2000:]
        isol8test.assert_nothing_left(pid)

    @classmethod
    def busctl(cls, *args, user=None):
        cmd = ["busctl", f"--address={cls.address}"] + list(args)
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True)

    def ctl(self, *args, user=None):
        cmd = [ISOL8CTL, f"--address={self.address}"] + list(args)
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True)

    def call(self, method, sig="", *args, user=None):
        return self.busctl("--json=short", "call", NAME, PATH, IFACE, method, *([sig] + list(args) if sig else []), user=user)

    def test_properties(self):
        for prop, sig in (("Version", "s"), ("ActiveExecutions", "u"), ("QueuedExecutions", "u"), ("MaxConcurrent", "u"),
                          ("SessionCount", "u"), ("TotalExecutions", "t")):
            r = self.busctl("--json=short", "get-property", NAME, PATH, IFACE, prop)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["type"], sig)
        r = self.busctl("--json=short", "get-property", NAME, PATH, IFACE, "MaxConcurrent")
        self.assertEqual(json.loads(r.stdout)["data"], 10)
        before = json.loads(self.busctl("--json=short", "get-property", NAME, PATH, IFACE, "TotalExecutions").stdout)["data"]
        self.daemon.execute({"cmd": "true"})
        after = json.loads(self.busctl("--json=short", "get-property", NAME, PATH, IFACE, "TotalExecutions").stdout)["data"]
        self.assertEqual(after, before + 1)

    def test_status(self):
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Version: 0.1.0", r.stdout)
        j = json.loads(self.ctl("--json", "status").stdout)
        self.assertEqual(j["version"], "0.1.0")
        self.assertEqual(j["maxConcurrent"], 10)

    def test_key_created_over_bus_works_over_http(self):
        r = self.call("CreateKey", "sst", "from-bus", "team-bus", "60000")
        self.assertEqual(r.returncode, 0, r.stderr)
        kid, key, prefix, expires = json.loads(r.stdout)["data"]
        self.assertRegex(key, r"^isol8_[0-9a-f]{64}$")
        self.assertEqual(prefix, key[:10] + "...")
        self.assertGreater(expires, time.time() * 1e6)
        self.assertEqual(self.daemon.get("/queue/status", key=key).status, 200)
        listed = json.loads(self.call("ListKeys", "s", "team-bus").stdout)["data"][0]
        self.assertEqual([k[0] for k in listed], [kid])
        self.assertEqual(self.call("RevokeKey", "s", kid).returncode, 0)
        self.assertEqual(self.daemon.get("/queue/status", key=key).status, 403)

    def test_isol8ctl_keys(self):
        r = self.ctl("--json", "keys", "create", "ctl-key", "--tenant", "t-ctl", "--ttl", "2h")
        self.assertEqual(r.returncode, 0, r.stderr)
        k = json.loads(r.stdout)
        self.assertEqual(set(k), {"id", "key", "name", "keyPrefix", "tenantId", "expiresAt"})   # as POST /auth/keys
        self.assertEqual(k["tenantId"], "t-ctl")
        listed = json.loads(self.ctl("--json", "keys", "list", "--tenant", "t-ctl").stdout)
        self.assertEqual([x["id"] for x in listed], [k["id"]])
        table = self.ctl("keys", "list", "--tenant", "t-ctl").stdout
        self.assertIn("ID", table.split("\n")[0])
        self.assertIn("ctl-key", table)
        bare = self.ctl("--no-legend", "keys", "list", "--tenant", "t-ctl").stdout
        self.assertNotIn("NAME", bare)
        self.assertEqual(self.ctl("keys", "revoke", k["id"]).returncode, 0)
        r = self.ctl("keys", "revoke", "00000000-0000-4000-8000-000000000000")
        self.assertEqual(r.returncode, 4)
        self.assertIn("Key not found", r.stderr)
        self.assertEqual(self.ctl("keys", "create", "x", "--ttl", "soon").returncode, 2)

    def test_isol8ctl_ttl_time_spans(self):
        import datetime
        for ttl, secs in (("3600", 3600), ("90s", 90), ("1h 30m", 5400), ("2d", 172800), ("1w", 604800)):
            r = self.ctl("--json=short", "keys", "create", "span", "--tenant", "t-span", "--ttl", ttl)
            self.assertEqual(r.returncode, 0, (ttl, r.stderr))
            self.assertNotIn("\n  ", r.stdout)   # short JSON: one line
            expires = datetime.datetime.fromisoformat(json.loads(r.stdout)["expiresAt"].replace("Z", "+00:00"))
            left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            self.assertAlmostEqual(left, secs, delta=30)
        for bad in ("11y", "0", "", "5 parsecs", "-3s"):
            r = self.ctl("keys", "create", "x", "--ttl", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--ttl", r.stderr)
        r = self.ctl("keys", "create", "x", "--tenant", "")
        self.assertEqual(r.returncode, 2)

    def test_sessions_over_bus(self):
        self.daemon.post("/execute", {"request": {"cmd": "echo x > /sandbox/f"}, "sessionId": "bus-visible"})
        listed = json.loads(self.ctl("--json", "sessions", "list").stdout)
        self.assertIn("bus-visible", [s["id"] for s in listed])
        entry = [s for s in listed if s["id"] == "bus-visible"][0]
        self.assertEqual(set(entry), {"id", "tenantId", "runtime", "isActive", "createdAt", "lastAccessedAt", "executions"})
        show = json.loads(self.ctl("--json", "sessions", "show", "bus-visible").stdout)
        self.assertEqual(show["executions"], 1)
        r = self.busctl("--json=short", "get-property", NAME, "/org/isol8/Daemon1/session/_40master_2fbus_2dvisible",
                        "org.isol8.Daemon1.Session", "Runtime")
        self.assertEqual(json.loads(r.stdout)["data"], "bash", r.stderr)
        self.assertEqual(self.ctl("sessions", "kill", "bus-visible").returncode, 0)
        self.assertNotIn("bus-visible", [s["id"] for s in self.daemon.get("/sessions").json()["sessions"]])
        self.assertEqual(self.ctl("sessions", "kill", "bus-visible").returncode, 4)
        self.assertEqual(self.ctl("sessions", "show", "nope").returncode, 4)
        # Destroy() on the session object itself
        self.daemon.post("/execute", {"request": {"cmd": "true"}, "sessionId": "by-object"})
        r = self.busctl("call", NAME, "/org/isol8/Daemon1/session/_40master_2fby_2dobject", "org.isol8.Daemon1.Session", "Destroy")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.daemon.get("/sessions").json()["sessions"], [])

    def test_error_names(self):
        r = self.call("RevokeKey", "s", "00000000-0000-4000-8000-000000000000")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Key not found", r.stderr)
        r = self.busctl("call", NAME, PATH, IFACE, "DestroySession", "s", "does-not-exist")
        self.assertIn("Session not found", r.stderr)
        # the error name itself, as a client sees it
        mon = subprocess.run(["dbus-send", f"--bus={self.address}", "--print-reply", f"--dest={NAME}", PATH,
                              f"{IFACE}.DestroySession", "string:nope"], capture_output=True, text=True)
        self.assertIn("org.isol8.Daemon1.Error.UnknownSession", mon.stderr)

    def test_cleanup(self):
        self.daemon.post("/execute", {"request": {"cmd": "true"}, "sessionId": "c-bus"})
        r = self.call("Cleanup")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(json.loads(r.stdout)["data"][0], 1)
        self.assertEqual(self.ctl("cleanup").returncode, 0)

    def test_unprivileged_caller_refused(self):
        for method, sig, args in (("CreateKey", "sst", ["x", "t", "0"]), ("ListKeys", "s", [""]), ("RevokeKey", "s", ["x"]),
                                  ("DestroySession", "s", ["x"]), ("Cleanup", "", []), ("ListImages", "", []),
                                  ("RemoveImage", "s", ["x"]), ("BuildImage", "ssas", ["x", "python", "1", "a"]),
                                  ("Drain", "", [])):
            r = self.call(method, sig, *args, user=65534)
            self.assertNotEqual(r.returncode, 0, method)
            self.assertIn("Access denied", r.stderr, method)
        # the daemon's own refusal (the bus policy here lets anyone talk to it)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "dbus-send", f"--bus={self.address}",
                            "--print-reply", f"--dest={NAME}", PATH, f"{IFACE}.Cleanup"], capture_output=True, text=True)
        self.assertIn("org.freedesktop.DBus.Error.AccessDenied: Only root and the isol8 admin group", r.stderr)
        # reading is allowed
        self.assertEqual(self.call("ListSessions", user=65534).returncode, 0)
        r = self.ctl("cleanup", user=65534)
        self.assertEqual(r.returncode, 3)

    def test_signals(self):
        mon = subprocess.Popen(["dbus-monitor", "--address", self.address, f"interface={IFACE}"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        self.daemon.post("/execute", {"request": {"cmd": "true"}, "sessionId": "sig-test"})
        self.daemon.request("DELETE", "/session/sig-test")
        time.sleep(0.5)
        mon.terminate()
        out = mon.communicate()[0]
        self.assertIn("member=SessionNew", out)
        self.assertIn("member=SessionRemoved", out)
        self.assertIn('"sig-test"', out)

    def test_introspection_matches(self):
        checked_in = open(os.path.join(ROOT, "dbus/org.isol8.Daemon1.xml")).read()
        generated = subprocess.run([isol8test.ISOL8, "serve", "--bus-introspect"], capture_output=True, text=True, check=True).stdout
        self.assertEqual(generated, checked_in)
        self.call("Cleanup")
        live = self.busctl("--json=short", "call", NAME, PATH, "org.freedesktop.DBus.Introspectable", "Introspect")
        live_xml = json.loads(live.stdout)["data"][0]
        self.assertEqual(live_xml, checked_in)
        self.assertIn('name="CreateKey"', live_xml)
        self.assertIn('<arg type="s" name="tenant" direction="in"/>', live_xml)
        self.assertIn('<signal name="SessionNew">', live_xml)
        self.assertIn('<interface name="org.isol8.Daemon1.Manager">', live_xml)

    def test_policy_file_is_well_formed(self):
        doc = xml.dom.minidom.parse(os.path.join(ROOT, "dbus/org.isol8.Daemon1.conf"))
        owners = [p.getAttribute("own") for p in doc.getElementsByTagName("allow") if p.getAttribute("own")]
        self.assertEqual(owners, [NAME])
        with open(os.path.join(ROOT, "dbus/org.isol8.Daemon1.service")) as f:
            self.assertIn("SystemdService=isol8.service", f.read())

    def test_user_bus(self):
        # --bus=user and isol8ctl --user both follow DBUS_SESSION_BUS_ADDRESS.
        out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        address, pid = out[0], int(out[1])
        try:
            d = Daemon(args=["--bus", "user"], env={"DBUS_SESSION_BUS_ADDRESS": address}).start()
            try:
                r = subprocess.run([ISOL8CTL, "--user", "--json", "status"], capture_output=True, text=True,
                                   env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["version"], "0.1.0")
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            os.kill(pid, signal.SIGTERM)

    def test_stop_with_live_sessions(self):
        # The sessions' last signals go out while the server stops: the D-Bus transport, gone
        # by then, must not be called (a crash at stop, seen under systemd).
        out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        address, bus_pid = out[0], int(out[1])
        try:
            d = Daemon(args=["--bus", "user"], env={"DBUS_SESSION_BUS_ADDRESS": address}).start()
            pid = d.pid()
            try:
                for sid in ("left-1", "left-2"):
                    r = d.post("/execute", {"request": {"cmd": "true"}, "sessionId": sid})
                    self.assertEqual(r.status, 200, r)
            finally:
                rc = d.stop()
            self.assertEqual(rc, 0, d.stderr_text()[-2000:])
            # (the class's own daemon still runs sandboxes: look only at this one's cgroups,
            # which hold every process of its sandboxes)
            self.assertEqual(isol8test.own_cgroup_dirs(pid), [])
        finally:
            os.kill(bus_pid, signal.SIGTERM)

    def test_isol8ctl_drain(self):
        # A server of its own (draining ends it): running work finishes, then it exits.
        tmp = tempfile.mkdtemp(prefix="isol8-drain-")
        os.chmod(tmp, 0o755)
        bus = isol8test.PrivateBus(tmp)
        try:
            d = Daemon(args=["--bus", bus.address]).start()
            bus.wait_for_name(NAME)
            pid = d.pid()
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(1) as ex:
                running = ex.submit(d.post, "/execute", {"request": {"cmd": "sleep 1; echo finished"}})
                time.sleep(0.4)
                r = subprocess.run([ISOL8CTL, f"--address={bus.address}", "drain"], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, "Draining: 1 run(s) under way will finish, then the server stops.\n")
                self.assertEqual(d.get("/health", key=None).status, 503)
                self.assertEqual(running.result().json()["stdout"], "finished")
            self.assertEqual(d.proc.wait(10), 0)
            d.stop()
            # (the class's own daemon still runs sandboxes: look only at this one's cgroups)
            self.assertEqual(isol8test.own_cgroup_dirs(pid), [])
        finally:
            bus.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_isol8ctl_usage(self):
        for args in (["--help"], ["keys", "--help"], ["sessions", "--help"], ["status", "--help"], ["cleanup", "--help"],
                     ["drain", "--help"], ["images", "--help"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("isol8ctl", r.stdout)
        self.assertEqual(self.ctl("frobnicate").returncode, 2)
        self.assertEqual(self.ctl("keys", "explode").returncode, 2)
        # usage errors are found before the bus is touched: no bus needed for them
        for args in (["keys", "create"], ["keys", "revoke"], ["sessions", "kill"], ["status", "extra"], ["--json=loud", "status"]):
            r = subprocess.run([ISOL8CTL, "--address=unix:path=/nonexistent"] + args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn("see isol8ctl --help", r.stderr)
        # refused by the bus policy: one plain sentence, exit 3
        r = self.ctl("cleanup", user=65534)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr.strip().count("\n"), 0)
        self.assertIn("permission denied", r.stderr)
        self.assertNotIn("matched rules", r.stderr)
        r = subprocess.run([ISOL8CTL, "--address=unix:path=/nonexistent", "status"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)


if __name__ == "__main__":
    isol8test.main()
