#!/usr/bin/env python3
"""Forwarded requests between the servers of a cluster (docs/scale-out.md) carry a signature
over cluster.secret instead of a key. An attacker who can reach a server's port but does not
have the secret must not be able to act as anyone with them: no forged, altered, replayed or
misplaced signature is accepted, and a server outside a cluster accepts none at all."""
import hashlib
import hmac
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import isol8test  # noqa: E402
from isol8test import Daemon  # noqa: E402

SECRET = "security-test-cluster-secret-0123456789"


def stamp(secret, node, t, method, path, kind, key_id, tenant, client):
    text = f"isol8-cluster-v1\n{node}\n{t}\n{method}\n{path}\n{kind}\n{key_id}\n{tenant}\n{client}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class ClusterSignatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        port = isol8test.free_port()
        db = os.path.join(cls.tmp.name, "keys.db")
        cls.daemon = Daemon(config={"cluster": {"nodeId": "n1", "advertiseUrl": f"http://127.0.0.1:{port}",
                                                "secret": SECRET}}, port=port, args=["--auth-db", db]).start()
        cls.plain = Daemon().start()

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0
        assert cls.plain.stop() == 0
        cls.tmp.cleanup()

    def send(self, daemon, method, path, body=None, secret=SECRET, t=None, kind="apikey", key_id="k1", tenant="victim",
             client="203.0.113.9", sign_tenant=None, sign_path=None, sign_client=None):
        t = int(time.time() * 1000) if t is None else t
        sig = stamp(secret, "n2", t, method, sign_path or path.split("?")[0], kind, key_id, sign_tenant or tenant,
                    sign_client or client)
        headers = {"X-Isol8-Cluster": f"n2 {t} {sig}", "X-Isol8-Identity": f"{kind} {key_id} {tenant}",
                   "X-Isol8-Client": client}
        return daemon.request(method, path, body=body, key=None, headers=headers)

    def run_as(self, daemon, code, **kw):
        return self.send(daemon, "POST", "/execute", {"request": {"code": code, "runtime": "bash"}, "sessionId": "s"}, **kw)

    def test_a_correct_signature_acts_for_its_tenant_only(self):
        r = self.run_as(self.daemon, "echo secret-of-victim > /sandbox/v; echo ok")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["stdout"], "ok")
        sessions = self.daemon.get("/sessions").json()["sessions"]
        self.assertIn(("s", "victim"), [(s["id"], s["tenantId"]) for s in sessions])

    def test_wrong_secret(self):
        r = self.run_as(self.daemon, "cat /sandbox/v", secret="not-the-secret-" + "y" * 30)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), {"error": "Invalid cluster signature"})

    def test_altered_identity(self):
        # Signed for tenant "attacker", presented as "victim".
        r = self.run_as(self.daemon, "cat /sandbox/v", sign_tenant="attacker")
        self.assertEqual(r.status, 401, r)

    def test_altered_path_and_client(self):
        self.assertEqual(self.run_as(self.daemon, "cat /sandbox/v", sign_path="/health").status, 401)
        self.assertEqual(self.run_as(self.daemon, "cat /sandbox/v", sign_client="127.0.0.1").status, 401)

    def test_replayed_too_late_or_early(self):
        old = int(time.time() * 1000) - 120000
        self.assertEqual(self.run_as(self.daemon, "cat /sandbox/v", t=old).status, 401)
        self.assertEqual(self.run_as(self.daemon, "cat /sandbox/v", t=old + 240000).status, 401)

    def test_master_identity_and_master_routes(self):
        # Signed as the master: still never for the master's routes (nothing forwards them).
        r = self.send(self.daemon, "POST", "/auth/keys", {"name": "x"}, kind="master", key_id="-", tenant="@master")
        self.assertEqual(r.status, 401, r)
        r = self.send(self.daemon, "GET", "/auth/keys", kind="apikey")
        self.assertEqual(r.status, 401, r)
        # A key identity cannot claim the master's namespace, nor the master a tenant.
        self.assertEqual(self.run_as(self.daemon, "true", kind="apikey", tenant="@master").status, 401)
        self.assertEqual(self.run_as(self.daemon, "true", kind="master", key_id="-", tenant="victim").status, 401)

    def test_garbage_headers(self):
        for stamp_value in ("", "n2", "n2 notanumber abc", "n2 1 " + "0" * 64 + " extra", "x" * 5000):
            r = self.daemon.request("GET", "/sessions", key=None,
                                    headers={"X-Isol8-Cluster": stamp_value, "X-Isol8-Identity": "apikey k victim",
                                             "X-Isol8-Client": "1.2.3.4"})
            self.assertIn(r.status, (401, 431), (stamp_value[:20], r))
        r = self.daemon.request("GET", "/sessions", key=None, headers={"X-Isol8-Cluster": "n2 1 abc"})
        self.assertEqual(r.status, 401, r)

    def test_a_server_outside_a_cluster_accepts_none(self):
        r = self.run_as(self.plain, "true")
        self.assertEqual(r.status, 401, r)
        # Even with a key next to it, the signature is not ignored: refused.
        r = self.plain.request("GET", "/sessions", headers={"X-Isol8-Cluster": "n2 1 abc"})
        self.assertEqual(r.status, 401, r)


if __name__ == "__main__":
    isol8test.main()
