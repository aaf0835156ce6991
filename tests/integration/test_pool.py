#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The warm pool serves HTTP requests: fast reuses cleaned sandboxes, secure never reuses."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import DaemonTestCase  # noqa: E402

# Looks for anything an earlier run could have left, then leaves all of it behind.
PROBE = r"""
leftover=""
[ -n "$(ls -A /sandbox)" ] && leftover="$leftover sandbox:$(ls -A /sandbox | tr '\n' ,)"
[ -n "$(ls -A /tmp)" ] && leftover="$leftover tmp:$(ls -A /tmp | tr '\n' ,)"
[ -n "$(ls -A /dev/shm)" ] && leftover="$leftover shm:$(ls -A /dev/shm | tr '\n' ,)"
[ "$(ipcs -m | grep -c '^0x')" != "0" ] && leftover="$leftover sysv-shm"
others=$(ls /proc | grep -E '^[0-9]+$' | while read p; do [ "$p" != 1 ] && [ "$p" != $$ ] && cat /proc/$p/comm 2>/dev/null; done | grep -v -E '^(ls|grep|cat|bash|while|tr)$' | tr '\n' ,)
[ -n "$others" ] && leftover="$leftover procs:$others"
echo "LEFTOVER:${leftover:-none}"
echo data > /sandbox/from-earlier-run
echo data > /tmp/from-earlier-run
echo data > /dev/shm/from-earlier-run
ipcmk -M 4096 >/dev/null
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
"""


class FastPool(DaemonTestCase):
    config = {"poolStrategy": "fast", "poolSize": {"clean": 1, "dirty": 1}}

    def test_reused_sandbox_shows_nothing_of_the_previous_run(self):
        ids = []
        for _ in range(8):
            res = self.run_code(PROBE, "bash")
            self.assertEqual(res["exitCode"], 0, res)
            self.assertIn("LEFTOVER:none", res["stdout"], res)
            ids.append(res["containerId"])
        # The pool serves the HTTP path: a handful of sandboxes served all eight runs.
        self.assertLessEqual(len(set(ids)), 3, ids)
        self.assertGreater(len(ids), len(set(ids)))

    def test_probe_detects_leftovers(self):
        # Guards the test above: run the probe twice in one run; the second pass must see it all.
        res = self.run_code(PROBE + "sleep 0.2\n" + PROBE, "bash")
        second = res["stdout"].split("\n")[1]
        for what in ("sandbox:from-earlier-run", "tmp:from-earlier-run", "shm:from-earlier-run", "sysv-shm", "procs:sleep"):
            self.assertIn(what, second)

    def test_no_processes_outlive_a_run(self):
        self.run_code("setsid sleep 1000 & disown; echo started", "bash")
        self.assertEqual(isol8test.sandbox_user_processes(), [])


class SecurePool(DaemonTestCase):
    config = {"poolStrategy": "secure", "poolSize": 2}

    def test_secure_never_reuses(self):
        ids = []
        for _ in range(6):
            res = self.run_code(PROBE, "bash")
            self.assertIn("LEFTOVER:none", res["stdout"], res)
            ids.append(res["containerId"])
        self.assertEqual(len(set(ids)), 6, ids)


if __name__ == "__main__":
    isol8test.main()
