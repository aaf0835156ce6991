#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The audit trail in a real journald: started privately inside a throwaway mount namespace,
then every record kind read back with journalctl -o json."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon  # noqa: E402

IDS = {
    "execution": "bfbd7875049346fbb4b0b5c8b06a4d9a",
    "auth-failure": "53232c662ca14bffb8d5b374865e5c84",
    "key-created": "c0bd57ada0b7437182d07b8ba14d43b4",
    "key-revoked": "9c7704a5c3744860aa94d113454aeca5",
    "session-created": "abb3195b62294b2f906c019dcdd773e1",
    "session-destroyed": "f2d76a1b97e74a7dbd0cee42aa7aadbc",
}

if os.environ.get("ISOL8_PRIVATE_JOURNAL") != "1":
    # Run this file again in a mount namespace of its own, where a private journald lives.
    env = dict(os.environ, ISOL8_PRIVATE_JOURNAL="1")
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable] + sys.argv, env)


def records(**match):
    args = ["journalctl", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=isol8"] + [f"{k}={v}" for k, v in match.items()]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def wait_records(timeout=5, **match):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = records(**match)
        if r:
            return r
        time.sleep(0.1)
    return []


class Journal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for d in ("/run/systemd", "/run/log", "/var/log/journal"):
            os.makedirs(d, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
        cls.journald = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists("/run/systemd/journal/socket"):
                break
            time.sleep(0.05)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.daemon = Daemon(config={"audit": {"destination": "journal", "includeCode": True}},
                            args=["--auth-db", os.path.join(cls.tmp.name, "k.db"), "--bus", "none"]).start()

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        cls.journald.terminate()
        cls.journald.wait(10)
        assert rc == 0
        isol8test.assert_nothing_left(pid)

    def test_execution_record(self):
        res = self.daemon.execute({"code": "echo hi", "runtime": "bash", "metadata": {"userId": "alice"}})
        rec = wait_records(ISOL8_EXECUTION_ID=res["executionId"])
        self.assertEqual(len(rec), 1)
        r = rec[0]
        self.assertEqual(r["MESSAGE_ID"], IDS["execution"])
        self.assertEqual(r["ISOL8_RUNTIME"], "bash")
        self.assertEqual(r["ISOL8_EXIT_CODE"], "0")
        self.assertEqual(r["ISOL8_AUTH_TYPE"], "master")
        self.assertEqual(r["ISOL8_TENANT"], "@master")
        self.assertEqual(r["ISOL8_USER_ID"], "alice")
        self.assertEqual(r["ISOL8_REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(r["ISOL8_TIMED_OUT"], "0")
        import hashlib
        self.assertEqual(r["ISOL8_CODE_SHA256"], hashlib.sha256(b"echo hi").hexdigest())
        self.assertEqual(r["ISOL8_CODE"], "echo hi")

    def test_no_warning_with_journald(self):
        self.assertNotIn("no journald", self.daemon.stderr_text())

    def test_streamed_execution_record(self):
        out = subprocess.run(["curl", "-sN", "-X", "POST", f"http://127.0.0.1:{self.daemon.port}/execute/stream",
                              "-H", f"Authorization: Bearer {self.daemon.key}", "-d",
                              json.dumps({"request": {"code": "sleep 5", "runtime": "bash", "timeoutMs": 300}})],
                             capture_output=True, text=True).stdout
        self.assertIn("137", out)
        rec = wait_records(ISOL8_STREAMED="1", ISOL8_TIMED_OUT="1")
        self.assertTrue(rec)
        self.assertEqual(rec[-1]["ISOL8_EXIT_CODE"], "137")

    def test_auth_failure_never_records_the_key(self):
        self.daemon.get("/queue/status", key="not-the-key-SECRET123")
        self.daemon.get("/queue/status", key=None)
        rec = wait_records(MESSAGE_ID=IDS["auth-failure"])
        self.assertTrue(rec)
        reasons = {r["ISOL8_AUTH_REASON"] for r in records(MESSAGE_ID=IDS["auth-failure"])}
        self.assertTrue({"invalid", "missing"} <= reasons)
        raw = subprocess.run(["journalctl", "-o", "export", "--no-pager"], capture_output=True).stdout
        self.assertNotIn(b"SECRET123", raw)

    def test_key_records(self):
        k = self.daemon.post("/auth/keys", {"name": "audited", "tenantId": "t-audit"}).json()
        self.daemon.request("DELETE", f"/auth/keys/{k['id']}")
        created = wait_records(MESSAGE_ID=IDS["key-created"], ISOL8_KEY_ID=k["id"])
        revoked = wait_records(MESSAGE_ID=IDS["key-revoked"], ISOL8_KEY_ID=k["id"])
        self.assertEqual(created[0]["ISOL8_TENANT"], "t-audit")
        self.assertEqual(created[0]["ISOL8_VIA"], "http")
        self.assertEqual(revoked[0]["ISOL8_VIA"], "http")
        raw = subprocess.run(["journalctl", "-o", "export", "--no-pager"], capture_output=True).stdout
        self.assertNotIn(k["key"].encode(), raw)

    def test_session_records(self):
        self.daemon.post("/execute", {"request": {"cmd": "true"}, "sessionId": "journaled"})
        self.daemon.request("DELETE", "/session/journaled")
        self.assertTrue(wait_records(MESSAGE_ID=IDS["session-created"], ISOL8_SESSION_ID="journaled"))
        gone = wait_records(MESSAGE_ID=IDS["session-destroyed"], ISOL8_SESSION_ID="journaled")
        self.assertEqual(gone[0]["ISOL8_REASON"], "deleted")

    def test_injection_forges_nothing(self):
        evil = "x\nMESSAGE_ID=" + IDS["key-created"] + "\nISOL8_TENANT=forged\nPRIORITY=0"
        res = self.daemon.execute({"code": "echo ok # " + evil, "runtime": "bash", "metadata": {"userId": evil}})
        rec = wait_records(ISOL8_EXECUTION_ID=res["executionId"])
        self.assertEqual(len(rec), 1)
        r = rec[0]
        self.assertEqual(r["MESSAGE_ID"], IDS["execution"])
        self.assertEqual(r["ISOL8_TENANT"], "@master")
        self.assertEqual(r["PRIORITY"], "6")
        self.assertEqual(r["ISOL8_USER_ID"], evil)
        self.assertEqual(records(ISOL8_TENANT="forged"), [])
        self.assertEqual(self.daemon.post("/auth/keys", {"name": "n", "tenantId": "t\nISOL8_VIA=dbus"}).status, 400)
        k = self.daemon.post("/auth/keys", {"name": evil, "tenantId": "t-inject"}).json()
        created = wait_records(ISOL8_KEY_ID=k["id"])
        self.assertEqual(created[0]["ISOL8_VIA"], "http")
        self.assertEqual(created[0]["ISOL8_KEY_NAME"], evil)


class AuditFile(unittest.TestCase):
    def test_file_and_stdout_destinations(self):
        with tempfile.TemporaryDirectory() as d:
            logdir = os.path.join(d, "audit")
            old = os.path.join(logdir, "audit-2000-01-01.jsonl")
            os.makedirs(logdir)
            with open(old, "w") as f:
                f.write("{}\n")
            os.utime(old, (946684800, 946684800))
            dm = Daemon(config={"audit": {"destination": "file", "logDir": logdir, "retentionDays": 30}}, args=["--bus", "none"]).start()
            try:
                res = dm.execute({"code": "echo to-file", "runtime": "bash"})
            finally:
                self.assertEqual(dm.stop(), 0)
            files = sorted(os.listdir(logdir))
            self.assertEqual(len(files), 1)           # the old one is past retentionDays
            self.assertRegex(files[0], r"^audit-\d{4}-\d\d-\d\d\.jsonl$")
            lines = [json.loads(l) for l in open(os.path.join(logdir, files[0]))]
            ex = [l for l in lines if l["event"] == "execution"]
            self.assertEqual(ex[0]["ISOL8_EXECUTION_ID"], res["executionId"])
            self.assertEqual(ex[0]["messageId"], IDS["execution"])
            self.assertNotIn("ISOL8_CODE", ex[0])   # includeCode is off by default

    def test_disabled_leaves_no_record(self):
        # audit.enabled false: no record, said once at start; the same server with it on writes
        # one (to stdout here, so that both are read the same way).
        for enabled in (True, False):
            dm = Daemon(config={"audit": {"enabled": enabled, "destination": "stdout"}}, args=["--bus", "none"]).start()
            try:
                res = dm.execute({"cmd": "echo x"})
                line = dm.read_line(timeout=1 if not enabled else 5)
            finally:
                self.assertEqual(dm.stop(), 0)
            if enabled:
                self.assertEqual(json.loads(line)["ISOL8_EXECUTION_ID"], res["executionId"])
                self.assertNotIn("audit: off", dm.stderr_text())
            else:
                self.assertIsNone(line)
                self.assertIn("audit: off (audit.enabled is false)", dm.stderr_text())

    def test_without_journald_the_server_says_records_are_lost(self):
        # sd_journal_send() drops records silently when no journald listens: the server says so
        # at start, with what to do. (A private /run/systemd: no journal socket, whatever this
        # machine runs.)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/systemd"], check=True)
        try:
            for destination in ("journal", "file"):
                with tempfile.TemporaryDirectory() as d:
                    dm = Daemon(config={"audit": {"destination": destination, "logDir": d}}, args=["--bus", "none"]).start()
                    self.assertEqual(dm.stop(), 0)
                warned = "audit: no journald here (/run/systemd/journal/socket: No such file or directory)" in dm.stderr_text()
                self.assertEqual(warned, destination == "journal", dm.stderr_text())
        finally:
            subprocess.run(["umount", "/run/systemd"], check=True)

    def test_the_record_is_written_before_the_answer(self):
        # No result leaves the server without its audit record: read at once after each answer,
        # the file already holds the whole record.
        with tempfile.TemporaryDirectory() as d:
            logdir = os.path.join(d, "audit")
            dm = Daemon(config={"audit": {"destination": "file", "logDir": logdir}}, args=["--bus", "none"]).start()
            try:
                def ids():
                    out = set()
                    for name in os.listdir(logdir):
                        with open(os.path.join(logdir, name)) as f:
                            for line in f:
                                rec = json.loads(line)   # a torn line fails here
                                if rec.get("event") == "execution":
                                    out.add(rec["ISOL8_EXECUTION_ID"])
                    return out
                for i in range(20):
                    res = dm.execute({"cmd": f"echo {i}"})
                    self.assertIn(res["executionId"], ids(), i)
            finally:
                self.assertEqual(dm.stop(), 0)


if __name__ == "__main__":
    isol8test.main()
