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


if __name__ == "__main__":
    isol8test.main()
