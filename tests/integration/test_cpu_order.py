#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The oldest runs first (src/core/cpu-order.c), on the real cgroup hierarchy: the oldest running
sandboxes, one per core the daemon may use, get the larger CPU weight until they end or their
lead (cpuLeadMs) is over, the others the normal one, and a sandbox between runs the small one, so
that its clean never takes CPU a run could use; three runs per two cores may be starting at once. v1 cpu.shares are read as v2 weights (1024 is
100). OldestRunFirst starts its daemon on one core (one leader); TwoCores on two."""

import glob
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import DaemonTestCase  # noqa: E402

FIRST, RUN, IDLE = 800, 25, 1
DEFAULT = 100   # the kernel's, when no weight is written
LEAD_MS = 1500


def cpu_base(daemon_pid):
    """The directory holding the daemon's sandbox cgroups for the cpu controller."""
    for base in isol8test.own_cgroup_dirs(daemon_pid):
        if glob.glob(f"{base}/sb-*/cpu.shares") or glob.glob(f"{base}/sb-*/cpu.weight"):
            return base
    raise AssertionError(f"no sandbox cgroup with a CPU weight below {isol8test.own_cgroup_dirs(daemon_pid)}")


def weight(sb_dir):
    if os.path.exists(f"{sb_dir}/cpu.weight"):
        with open(f"{sb_dir}/cpu.weight") as f:
            return int(f.read())
    with open(f"{sb_dir}/cpu.shares") as f:
        return round(int(f.read()) * 100 / 1024)


def sandbox_of(daemon_pid, token, timeout=10):
    """The cgroup directory of the sandbox whose processes include one with `token` in its
    command line (the run's program)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for sb in glob.glob(f"{cpu_base(daemon_pid)}/sb-*"):
            try:
                with open(f"{sb}/cgroup.procs") as f:
                    pids = f.read().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if token.encode() in f.read():
                            return sb
                except OSError:
                    pass
        time.sleep(0.02)
    raise AssertionError(f"no sandbox runs {token!r}")


class OnCores(DaemonTestCase):
    """A daemon started with only the first `cores` of this process's CPUs (inherited)."""
    cores = 1

    @classmethod
    def setUpClass(cls):
        mine = os.sched_getaffinity(0)
        if len(mine) < cls.cores:
            raise unittest.SkipTest(f"needs {cls.cores} CPUs, this process may use {len(mine)}")
        os.sched_setaffinity(0, sorted(mine)[:cls.cores])
        try:
            super().setUpClass()
        finally:
            os.sched_setaffinity(0, mine)


class OldestRunFirst(OnCores):
    # Room for every used sandbox to stay warm (clean + dirty): else one built ahead while two
    # ran makes a used one surplus, and it is destroyed instead of cleaned (no weight to read).
    config = {"cpuLeadMs": LEAD_MS, "poolSize": {"clean": 3, "dirty": 3}}

    def start(self, code):
        box = {}
        t = threading.Thread(target=lambda: box.update(res=self.run_code(code, "bash")))
        t.start()
        return t, box

    def test_the_lead_passes_in_order_and_ends(self):
        pid = self.daemon.pid()
        t0 = time.monotonic()
        ta, ra = self.start("sleep 3.601")
        a = sandbox_of(pid, "3.601")
        self.assertEqual(weight(a), FIRST, "the only run leads")
        time.sleep(max(0, t0 + 0.8 - time.monotonic()))
        tb, rb = self.start("sleep 2.702")
        b = sandbox_of(pid, "2.702")
        self.assertNotEqual(a, b)
        self.assertEqual(weight(b), RUN, "a younger run runs behind the oldest")
        self.assertEqual(weight(a), FIRST)
        # a's lead is over at 1.5 s: b, younger than its own 1.5 s, takes it (until about 2.3 s).
        time.sleep(max(0, t0 + 1.8 - time.monotonic()))
        self.assertEqual(weight(a), RUN, "a long run gives the lead up")
        self.assertEqual(weight(b), FIRST)
        time.sleep(max(0, t0 + 2.9 - time.monotonic()))
        self.assertEqual(weight(b), RUN, "nobody leads past their time")
        ta.join()
        tb.join()
        self.assertEqual(ra["res"]["exitCode"], 0, ra)
        self.assertEqual(rb["res"]["exitCode"], 0, rb)
        # Between runs (cleaning, then waiting in the pool) a sandbox has the small weight.
        self.assertEqual(weight(a), IDLE)
        self.assertEqual(weight(b), IDLE)

    def test_a_run_that_ends_passes_the_lead_on_at_once(self):
        pid = self.daemon.pid()
        ta, ra = self.start("sleep 0.801")
        a = sandbox_of(pid, "0.801")
        tb, rb = self.start("sleep 2.502")
        b = sandbox_of(pid, "2.502")
        self.assertEqual((weight(a), weight(b)), (FIRST, RUN))
        ta.join()
        self.assertEqual(weight(a), IDLE)
        self.assertEqual(weight(b), FIRST, "the next oldest leads when the first ends")
        tb.join()
        self.assertEqual(weight(b), IDLE)
        self.assertEqual(ra["res"]["exitCode"], 0, ra)
        self.assertEqual(rb["res"]["exitCode"], 0, rb)

    def test_a_run_in_a_session_takes_its_turn_too(self):
        pid = self.daemon.pid()
        def in_session(code):
            r = self.daemon.post("/execute", {"request": {"code": code, "runtime": "bash"}, "sessionId": "cpu-order"})
            self.assertEqual(r.status, 200, r.body)
            return r.json()
        self.assertEqual(in_session("true")["exitCode"], 0)
        box = {}
        t = threading.Thread(target=lambda: box.update(res=in_session("sleep 1.303")))
        t.start()
        s = sandbox_of(pid, "1.303")
        self.assertEqual(weight(s), FIRST)
        t.join()
        self.assertEqual(box["res"]["exitCode"], 0, box)
        self.assertEqual(weight(s), IDLE, "a session's sandbox between runs has the small weight")
        self.assertEqual(self.daemon.request("DELETE", "/session/cpu-order").status, 200)


def starts_of(case, n, code="date +%s%N; sleep 1"):
    """n runs sent at once to a warm pool: when each program began (ms), from the first."""
    deadline = time.monotonic() + 20
    while case.daemon.get("/queue/status").json()["pool"]["ready"] < n:
        case.assertLess(time.monotonic(), deadline, f"the pool never had {n} sandboxes ready")
        time.sleep(0.05)
    barrier = threading.Barrier(n)
    boxes = [{} for _ in range(n)]

    def go(box):
        barrier.wait()
        box["res"] = case.run_code(code, "bash")
    threads = [threading.Thread(target=go, args=(b,)) for b in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in boxes:
        case.assertEqual(b["res"]["exitCode"], 0, b)
    starts = sorted(int(b["res"]["stdout"]) / 1e6 for b in boxes)
    return [round(t - starts[0], 1) for t in starts]


class PacedStarts(OnCores):
    """One core: two runs may be starting (in their first cpuStartMs) at once; the others wait,
    in order, until one of them ends or ages. A long window makes the wait plain to see."""
    config = {"cpuStartMs": 300, "poolSize": {"clean": 4, "dirty": 4}}

    def test_the_third_waits_until_a_start_ages(self):
        spread = starts_of(self, 4)
        self.assertLess(spread[1], 150, f"the second did not start at once: {spread}")
        # Counted from the first's start, which its program prints a little later.
        self.assertGreaterEqual(spread[2], 250, f"the third did not wait for a start to age: {spread}")
        self.assertLess(spread[3], 600, f"the fourth waited for more than one window: {spread}")


class UnpacedStarts(OnCores):
    config = {"cpuStartMs": 0, "poolSize": {"clean": 4, "dirty": 4}}

    def test_all_start_at_once(self):
        spread = starts_of(self, 4)
        self.assertLess(spread[3], 200, f"runs waited to start with pacing off: {spread}")


class TwoCores(OnCores):
    cores = 2
    config = {"cpuLeadMs": LEAD_MS, "poolSize": {"clean": 4, "dirty": 4}}

    def test_the_two_oldest_lead(self):
        pid = self.daemon.pid()
        runs = {}
        for token in ("0.801", "2.102", "2.403"):
            box = {}
            t = threading.Thread(target=lambda tk=token, b=box: b.update(res=self.run_code(f"sleep {tk}", "bash")))
            t.start()
            runs[token] = (t, box, sandbox_of(pid, token))
        a, b, c = (runs[k][2] for k in ("0.801", "2.102", "2.403"))
        self.assertEqual((weight(a), weight(b), weight(c)), (FIRST, FIRST, RUN), "one leader per core, the third waits")
        runs["0.801"][0].join()
        self.assertEqual(weight(a), IDLE)
        self.assertEqual((weight(b), weight(c)), (FIRST, FIRST), "the third takes the free lead at once")
        for t, box, _ in runs.values():
            t.join()
            self.assertEqual(box["res"]["exitCode"], 0, box)


class LeadOff(DaemonTestCase):
    config = {"cpuLeadMs": 0}

    def test_no_weight_is_written(self):
        pid = self.daemon.pid()
        box = {}
        t = threading.Thread(target=lambda: box.update(res=self.run_code("sleep 0.904", "bash")))
        t.start()
        s = sandbox_of(pid, "0.904")
        self.assertEqual(weight(s), DEFAULT, "the kernel's default")
        t.join()
        self.assertEqual(weight(s), DEFAULT)
        self.assertEqual(box["res"]["exitCode"], 0, box)


if __name__ == "__main__":
    isol8test.main()
