#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runtime images: built by isol8ctl over D-Bus (a private dbus-daemon) from a local PyPI index
and a local npm registry on loopback, listed, used by options.image and by installPackages that
an image holds (nothing is installed then), read-only in the sandbox, removed, and cleaned up."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
import netservers  # noqa: E402
from isol8test import Daemon  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
ISOL8CTL = os.path.join(os.path.dirname(isol8test.ISOL8), "isol8ctl")

HOSTS = "127.0.0.1 localhost\n127.0.0.2 pypi.test npm.test deb.test\n"


class Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="isol8-images-")
        os.chmod(cls.tmp, 0o755)
        cls.pypi, cls.npm, base = netservers.probe_indexes()
        # A Debian mirror: isol8tool needs isol8lib (served) and bash (the host's: not fetched).
        debs = {("isol8lib", "1.0", ""): netservers.build_deb("isol8lib", "1.0", {"/usr/bin/isol8helper": "#!/bin/sh\necho 42\n"}),
                ("isol8tool", "2.0", "isol8lib (>= 1.0), bash, libc6 | musl"): netservers.build_deb(
                    "isol8tool", "2.0", {"/usr/bin/isol8tool": "#!/bin/sh\necho tool says $(isol8helper)\n"},
                    "isol8lib (>= 1.0), bash, libc6 | musl")}
        cls.deb = netservers.HttpServer("127.0.0.2", routes=netservers.debian_routes("isol8test", debs))
        cls.bus = isol8test.PrivateBus(cls.tmp)
        cls.address = cls.bus.address
        cls.images_dir = os.path.join(cls.tmp, "images")
        cls.config = config = {
            "network": {"allowedAddresses": ["127.0.0.2/32"], "allowedPorts": [cls.pypi.port, cls.npm.port, cls.deb.port]},
            "packages": {"pypiIndexUrl": f"http://pypi.test:{cls.pypi.port}/simple/", "npmRegistry": base,
                         "debianMirror": f"http://deb.test:{cls.deb.port}/debian", "debianSuite": "isol8test",
                         "installTimeoutMs": 60000},
            "images": {"directory": cls.images_dir, "maxSize": "64m"},
        }
        old_umask = os.umask(0o077)     # as the unit has it (UMask=0077)
        try:
            cls.daemon = Daemon(config=config, files={"/etc/hosts": HOSTS},
                                args=["--bus", cls.address, "--auth-db", os.path.join(cls.tmp, "keys.db")]).start()
        finally:
            os.umask(old_umask)
        cls.bus.wait_for_name()

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        cls.bus.stop()
        cls.pypi.close()
        cls.npm.close()
        cls.deb.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, cls.daemon.stderr_text()[-2000:]
        isol8test.assert_nothing_left(pid)

    def ctl(self, *args):
        return subprocess.run([ISOL8CTL, f"--address={self.address}"] + list(args), capture_output=True, text=True)

    def build(self, name, runtime, packages):
        r = self.ctl("images", "build", name, "--runtime", runtime, "--packages", packages)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def listed(self):
        r = self.ctl("--json=short", "images", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {i["name"]: i for i in json.loads(r.stdout)}

    def test_python_image(self):
        r = self.build("py-probe", "python", "isol8probe")
        self.assertIn("Built py-probe", r.stdout)
        img = self.listed()["py-probe"]
        self.assertEqual((img["runtime"], img["packages"]), ("python", ["isol8probe"]))
        self.assertGreater(img["sizeBytes"], 0)
        self.assertTrue(os.path.isfile(os.path.join(self.images_dir, "py-probe", "image.json")))
        # `isol8 image ...` is the same command under upstream's CLI name.
        r = subprocess.run([isol8test.ISOL8, "image", "list", f"--address={self.address}", "--no-legend"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("py-probe", r.stdout)
        # Readable by anyone whatever the daemon's umask (UMask=0077 under its unit, and here).
        modes = {oct(os.stat(os.path.join(dp, n)).st_mode & 0o777)
                 for dp, dns, fns in os.walk(os.path.join(self.images_dir, "py-probe", "layer")) for n in dns + fns}
        self.assertLessEqual(modes, {"0o755", "0o644"}, modes)
        # By name: no network, nothing installed, the package read-only where the image is.
        code = ("import isol8probe, os\nprint(isol8probe.ANSWER, isol8probe.__file__.startswith('/opt/isol8/image/'))\n"
                "try:\n    open(os.path.join(os.path.dirname(isol8probe.__file__), 'x'), 'w')\nexcept OSError as e:\n"
                "    print(e.strerror)\n")
        res = self.daemon.execute({"code": code, "runtime": "python"}, {"image": "py-probe"})
        self.assertEqual(res["exitCode"], 0, res)
        self.assertEqual(res["stdout"].split("\n"), ["42 True", "Read-only file system"], res)
        # By its packages: the run gets the image and asks the index for nothing.
        before = len(self.pypi.requests)
        res = self.daemon.execute({"code": "import isol8probe\nprint(isol8probe.ANSWER)", "runtime": "python",
                                   "installPackages": ["isol8probe"]})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        self.assertEqual(len(self.pypi.requests), before)
        # A plain run does not see it.
        res = self.daemon.execute({"code": "import isol8probe", "runtime": "python"})
        self.assertEqual(res["exitCode"], 1, res)
        self.assertIn("ModuleNotFoundError", res["stderr"])

    def test_node_and_bun_images(self):
        self.build("js-probe", "node", "isol8probe-js")
        res = self.daemon.execute({"code": "console.log(require('isol8probe-js').answer)", "runtime": "node"},
                                  {"image": "js-probe"})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        # import finds it too (/node_modules is on the way up from /sandbox).
        res = self.daemon.execute({"code": "import p from 'isol8probe-js'; console.log(p.answer)", "runtime": "node",
                                   "fileExtension": ".mjs"}, {"image": "js-probe"})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        self.build("bun-probe", "bun", "isol8probe-js")
        before = len(self.npm.requests)
        res = self.daemon.execute({"code": "console.log(require('isol8probe-js').answer)", "runtime": "bun",
                                   "installPackages": ["isol8probe-js"]})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        self.assertEqual(len(self.npm.requests), before)

    def test_bash_image_of_debian_packages(self):
        r = self.build("tools", "bash", "isol8tool")
        self.assertIn("Built tools", r.stdout)
        self.assertEqual(self.listed()["tools"]["runtime"], "bash")
        # Only what the host lacks came from the mirror (bash and libc6 are the host's).
        fetched = sorted(os.path.basename(req[1]) for req in self.deb.requests if req[1].endswith(".deb"))
        self.assertEqual(fetched, ["isol8lib_1.0_all.deb", "isol8tool_2.0_all.deb"])
        res = self.daemon.execute({"cmd": "isol8tool; command -v isol8tool"}, {"image": "tools"})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "tool says 42\n/opt/isol8/image/usr/bin/isol8tool"), res)
        res = self.daemon.execute({"cmd": "command -v isol8tool || echo none"})
        self.assertEqual(res["stdout"], "none", res)
        r = self.ctl("images", "build", "tools2", "--runtime", "bash", "--packages", "isol8-nowhere")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("package isol8-nowhere is not in isol8test/main", r.stderr)

    def test_deno_image(self):
        # deno's cache of the npm package, read-only: the import needs neither network nor registry.
        self.build("deno-probe", "deno", "isol8probe-js")
        before = len(self.npm.requests)
        code = "import p from 'npm:isol8probe-js'; console.log(p.answer)"
        res = self.daemon.execute({"code": code, "runtime": "deno"}, {"image": "deno-probe"})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        res = self.daemon.execute({"code": code, "runtime": "deno", "installPackages": ["isol8probe-js"]})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        self.assertEqual(len(self.npm.requests), before)

    def test_images_outlive_their_server(self):
        # Shutdown keeps images: another server on the same directory lists and uses them.
        self.build("py-kept", "python", "isol8probe")
        d = Daemon(config=self.config, files={"/etc/hosts": HOSTS}).start()
        try:
            res = d.execute({"code": "import isol8probe\nprint(isol8probe.ANSWER)", "runtime": "python"}, {"image": "py-kept"})
            self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertIn("py-kept", self.listed())
        self.assertEqual(self.ctl("images", "remove", "py-kept").returncode, 0)

    def test_session_on_an_image(self):
        self.build("py-sess", "python", "isol8probe")
        code = "import isol8probe\nprint(isol8probe.ANSWER)"

        def run(options=None):
            body = {"request": {"code": code, "runtime": "python"}, "sessionId": "on-image"}
            if options:
                body["options"] = options
            r = self.daemon.post("/execute", body)
            self.assertEqual(r.status, 200, r)
            return r.json()
        res = run({"image": "py-sess"})
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        # Later runs keep the session's image without naming it; naming it again is fine.
        res = run()
        self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
        res = run({"image": "py-sess"})
        self.assertEqual(res["stdout"], "42", res)
        self.build("py-sess2", "python", "isol8probe")
        r = self.daemon.post("/execute", {"request": {"code": code, "runtime": "python"}, "sessionId": "on-image",
                                          "options": {"image": "py-sess2"}})
        self.assertEqual((r.status, r.json()["error"]), (400, "Cannot switch image from py-sess to py-sess2 in session on-image"))
        # The image stays while the session keeps a sandbox of it.
        r = self.ctl("images", "remove", "py-sess")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("in use", r.stderr)
        self.assertEqual(self.daemon.request("DELETE", "/session/on-image").status, 200)
        self.assertEqual(self.ctl("images", "remove", "py-sess").returncode, 0)
        self.assertEqual(self.ctl("images", "remove", "py-sess2").returncode, 0)

    def test_dependencies_are_built_at_start(self):
        # upstream's "dependencies" (what its `isol8 setup` bakes in): an image per runtime,
        # built in the background at start-up, then used by runs asking for those packages.
        d = Daemon(config=dict(self.config, images={"directory": os.path.join(self.tmp, "images-deps")},
                               dependencies={"python": ["isol8probe"], "agent": ["x"]}),
                   files={"/etc/hosts": HOSTS}).start()
        try:
            meta = os.path.join(self.tmp, "images-deps", "python-custom", "image.json")
            for _ in range(300):
                if os.path.exists(meta):
                    break
                time.sleep(0.1)
            with open(meta) as f:
                self.assertEqual(json.load(f)["packages"], ["isol8probe"])
            before = len(self.pypi.requests)
            res = d.execute({"code": "import isol8probe\nprint(isol8probe.ANSWER)", "runtime": "python",
                             "installPackages": ["isol8probe"]})
            self.assertEqual((res["exitCode"], res["stdout"]), (0, "42"), res)
            self.assertEqual(len(self.pypi.requests), before)
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertIn("dependencies.agent: images are built for python, node, bun, deno and bash; ignored", d.stderr_text())

    def test_refusals(self):
        r = self.daemon.post("/execute", {"request": {"code": "pass", "runtime": "python"}, "options": {"image": "nope"}})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"], 'options.image: no image named "nope"')
        r = self.daemon.post("/execute", {"request": {"code": "pass", "runtime": "python"}, "options": {"image": "../x"}})
        self.assertEqual((r.status, r.json()["error"]), (400, 'options.image: not an image name: "../x"'))
        self.build("py-other", "python", "isol8probe")
        r = self.daemon.post("/execute", {"request": {"code": "1", "runtime": "node"}, "options": {"image": "py-other"}})
        self.assertEqual((r.status, r.json()["error"]), (400, 'options.image: "py-other" is an image for python, not node'))
        for args, words in ((("Bad/Name", "--runtime", "python", "--packages", "a"), "image name"),
                            (("ok", "--runtime", "agent", "--packages", "a"), "images are built for python, node, bun, deno and bash"),
                            (("ok", "--runtime", "python", "--packages", "--index-url=x"), "not a package name"),
                            (("py-other", "--runtime", "python", "--packages", "isol8probe"), "exists")):
            r = self.ctl("images", "build", *args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(words, r.stderr, args)
        # A package the index does not have: the installer's own words.
        r = self.ctl("images", "build", "py-missing", "--runtime", "python", "--packages", "isol8-not-there")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Package installation failed", r.stderr)
        self.assertIn("isol8-not-there", r.stderr)
        self.assertNotIn("py-missing", self.listed())
        self.assertEqual([e for e in os.listdir(self.images_dir) if e.startswith(".build-")], [])

    def test_remove_and_cleanup(self):
        self.build("py-gone", "python", "isol8probe")
        self.build("py-gone2", "python", "isol8probe")
        r = self.ctl("images", "remove", "py-gone")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("py-gone", self.listed())
        r = self.ctl("images", "remove", "py-gone")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Image not found", r.stderr)
        r = self.daemon.post("/cleanup", {"images": True})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(r.json()["images"]["removed"], 1)
        self.assertEqual(self.listed(), {})
        for _ in range(50):
            if not [e for e in os.listdir(self.images_dir) if not e.startswith(".")] and \
                    not [e for e in os.listdir(self.images_dir) if e.startswith(".trash-")]:
                break
            time.sleep(0.1)
        self.assertEqual(os.listdir(self.images_dir), [])


if __name__ == "__main__":
    isol8test.main()
