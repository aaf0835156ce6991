#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""request.installPackages: installed in the run's own sandbox before the code, as the sandbox
user, through the daemon's proxy to the package indexes the server names and nowhere else, from
a local PyPI "simple" index and a local npm registry on loopback (the daemon resolves their names
through an /etc/hosts of its own)."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
import netservers  # noqa: E402
from isol8test import DaemonTestCase  # noqa: E402

HOSTS = "127.0.0.1 localhost\n127.0.0.2 pypi.test npm.test other.test\n"


class Packages(DaemonTestCase):
    daemon_files = {"/etc/hosts": HOSTS}

    @classmethod
    def setUpClass(cls):
        cls.pypi, cls.npm, base = netservers.probe_indexes()
        cls.other = netservers.HttpServer("127.0.0.2")
        # An index page that sends pip to another host for the file: the install may not follow.
        elsewhere = netservers.pypi_routes("isol8elsewhere", "1.0", netservers.build_wheel("isol8elsewhere", "1.0", ""))
        page = elsewhere["/simple/isol8elsewhere/"][1].replace(b'href="/files/', f'href="http://other.test:{cls.other.port}/files/'.encode())
        cls.pypi.routes["/simple/isol8elsewhere/"] = ("text/html", page)
        cls.config = {
            "network": {"allowedAddresses": ["127.0.0.2/32"],
                        "allowedPorts": [cls.pypi.port, cls.npm.port, cls.other.port]},
            "packages": {"pypiIndexUrl": f"http://pypi.test:{cls.pypi.port}/simple/", "npmRegistry": base,
                         "installTimeoutMs": 60000},
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for s in (cls.pypi, cls.npm, cls.other):
            s.close()

    def run_with(self, code, runtime, packages, **fields):
        req = {"code": code, "runtime": runtime, "installPackages": packages, "timeoutMs": 60000}
        req.update(fields)
        return self.daemon.execute(req)

    def test_python(self):
        res = self.run_with("import isol8probe, urllib.request\nprint(isol8probe.ANSWER)\n"
                            "try:\n    urllib.request.urlopen('http://other.test/', timeout=3)\nexcept Exception as e:\n"
                            "    print('no network:', type(e).__name__)\n", "python", ["isol8probe"])
        self.assertEqual(res["exitCode"], 0, res)
        lines = res["stdout"].split("\n")
        self.assertEqual(lines[-2:], ["42", "no network: URLError"], res)
        # Installed as the sandbox user, under /sandbox.
        res = self.run_with("import isol8probe, os\nprint(os.stat(isol8probe.__file__).st_uid, isol8probe.__file__.startswith('/sandbox/'))",
                            "python", ["isol8probe"])
        self.assertTrue(res["stdout"].endswith("1000 True"), res)

    def test_node(self):
        res = self.run_with("console.log(require('isol8probe-js').answer)", "node", ["isol8probe-js"])
        self.assertEqual(res["exitCode"], 0, res)
        self.assertTrue(res["stdout"].endswith("42"), res)

    def test_bun(self):
        res = self.run_with("const p = require('isol8probe-js'); console.log(p.answer)", "bun", ["isol8probe-js"])
        self.assertEqual(res["exitCode"], 0, res)
        self.assertTrue(res["stdout"].endswith("42"), res)

    def test_deno(self):
        res = self.run_with("import p from 'npm:isol8probe-js'; console.log(p.answer)", "deno", ["isol8probe-js"])
        self.assertEqual(res["exitCode"], 0, res)
        self.assertTrue(res["stdout"].endswith("42"), res)

    def test_missing_package_fails_with_the_installers_message(self):
        res = self.run_with("print('never')", "python", ["isol8-no-such-package"])
        self.assertNotEqual(res["exitCode"], 0, res)
        self.assertNotIn("never", res["stdout"])
        self.assertIn("No matching distribution found for isol8-no-such-package", res["stderr"])
        self.assertIn("Package installation failed (exit code", res["stderr"])

    def test_only_the_indexes_are_reachable_during_install(self):
        # A package spec cannot be a URL to elsewhere: it is refused before anything runs...
        r = self.daemon.post("/execute", {"request": {"code": "1", "runtime": "python",
                                                      "installPackages": [f"http://other.test:{self.other.port}/x.whl"]}})
        self.assertEqual(r.status, 400)
        # ... and an option is not a package.
        r = self.daemon.post("/execute", {"request": {"code": "1", "runtime": "python", "installPackages": ["--index-url=x"]}})
        self.assertEqual(r.status, 400)
        res = self.run_with("print('never')", "python", ["isol8elsewhere"])
        self.assertNotEqual(res["exitCode"], 0, res)
        self.assertIn("403", res["stderr"], res)
        self.assertEqual(self.other.requests, [])
        r = self.daemon.post("/execute", {"request": {"code": "true", "runtime": "bash", "installPackages": ["curl"]}})
        self.assertEqual(r.status, 400)
        self.assertIn("system packages come from an image", r.json()["error"])

    def test_streamed_install_output_is_setup(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=60)
        conn.request("POST", "/execute/stream", json.dumps({"request": {
            "code": "import isol8probe; print('code', isol8probe.ANSWER)", "runtime": "python",
            "installPackages": ["isol8probe"]}}),
            {"Authorization": f"Bearer {self.daemon.key}", "Content-Type": "application/json"})
        events = [json.loads(line[6:]) for line in conn.getresponse().read().decode().split("\n") if line.startswith("data: ")]
        conn.close()
        setup_out = "".join(e["data"] for e in events if e["type"] == "stdout" and e["phase"] == "setup")
        self.assertIn("isol8probe", setup_out, events)
        # Unbuffered python may write one print in pieces: the chunks together.
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout" and e["phase"] == "code"), "code 42\n",
                         events)
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})

    def test_session_keeps_its_packages(self):
        sid = "pkg-session"
        r = self.daemon.post("/execute", {"request": {"code": "print(1)", "runtime": "python", "installPackages": ["isol8probe"],
                                                      "timeoutMs": 60000}, "sessionId": sid})
        self.assertEqual(r.status, 200, r)
        n = len(self.pypi.requests)
        r = self.daemon.post("/execute", {"request": {"code": "import isol8probe; print(isol8probe.ANSWER)", "runtime": "python"},
                                          "sessionId": sid})
        self.assertEqual(r.json()["stdout"], "42", r)
        self.assertEqual(len(self.pypi.requests), n)     # nothing installed again
        self.daemon.request("DELETE", f"/session/{sid}")


if __name__ == "__main__":
    isol8test.main()
