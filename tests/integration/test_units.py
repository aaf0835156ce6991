#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The systemd units pass systemd-analyze verify with nothing on stderr."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../units")


class Units(unittest.TestCase):
    def verify(self, names):
        build_units = os.environ.get("ISOL8_UNIT_DIR", os.path.join(os.path.dirname(isol8test.ISOL8), "../units"))
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(SRC, "isol8.socket"), d)
            with open(os.path.join(build_units, "isol8.service")) as f:
                text = f.read()
            # point ExecStart at the binary under test so verify can check it exists
            lines = []
            for line in text.splitlines():
                if line.startswith("ExecStart="):
                    line = "ExecStart=" + isol8test.ISOL8 + " " + line.split(" ", 1)[1]
                lines.append(line)
            with open(os.path.join(d, "isol8.service"), "w") as f:
                f.write("\n".join(lines) + "\n")
            r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + [os.path.join(d, n) for n in names],
                               capture_output=True, text=True)
            return r

    def test_units_verify_cleanly(self):
        r = self.verify(["isol8.socket", "isol8.service"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def test_service_keys(self):
        with open(os.path.join(os.path.dirname(isol8test.ISOL8), "../units/isol8.service")) as f:
            text = f.read()
        for key in ("Type=notify", "WatchdogSec=", "Delegate=yes"):
            self.assertIn(key, text)
        with open(os.path.join(SRC, "isol8.socket")) as f:
            sock = f.read()
        self.assertIn("ListenStream=3000", sock)
        self.assertIn("FileDescriptorName=http", sock)

    def test_verify_catches_a_bad_key(self):
        # The lint must be able to fail: a unit with an unknown key makes noise on stderr.
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.service")
            with open(p, "w") as f:
                f.write(f"[Service]\nExecStart={isol8test.ISOL8} serve\nFrobnicate=yes\n")
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", p], capture_output=True, text=True)
            self.assertNotEqual(r.stderr.strip(), "")


class ExampleConfig(unittest.TestCase):
    def test_the_installed_example_is_valid_and_complete(self):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../units/isol8.config.example.json")
        d = isol8test.Daemon(config=open(path).read().replace('"idleExitSec": 300', '"idleExitSec": 0')).start()
        try:
            self.assertEqual(d.get("/health", key=None).status, 200)
            self.assertNotIn("nknown", d.stderr_text())   # no unknown key warned about
        finally:
            self.assertEqual(d.stop(), 0)


class Install(unittest.TestCase):
    def test_meson_installs_everything(self):
        build = os.path.abspath(os.path.join(os.path.dirname(isol8test.ISOL8), ".."))
        with tempfile.TemporaryDirectory() as dest:
            r = subprocess.run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            found = set()
            for root, _, files in os.walk(dest):
                for f in files:
                    found.add(os.path.relpath(os.path.join(root, f), dest))
            want = ["bin/isol8", "bin/isol8ctl", "libexec/isol8/isol8-sandbox-init", "isol8.socket", "isol8.service",
                    "usr/share/dbus-1/system.d/org.isol8.Daemon1.conf",
                    "system-services/org.isol8.Daemon1.service", "interfaces/org.isol8.Daemon1.xml", "catalog/isol8.catalog",
                    "sysusers.d/isol8.conf", "tmpfiles.d/isol8.conf", "man1/isol8.1", "man1/isol8ctl.1", "man8/isol8-serve.8",
                    "man5/isol8.config.json.5", "include/isol8/isol8.h", "pkgconfig/isol8.pc", "completions/isol8ctl", "completions/isol8",
                    "doc/isol8/isol8.config.example.json"]
            for w in want:
                self.assertTrue(any(f.endswith(w) for f in found), f"{w} not installed: {sorted(found)}")
            self.assertTrue(any("libisol8.so" in f for f in found))


if __name__ == "__main__":
    isol8test.main()
