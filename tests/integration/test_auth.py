#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DB-backed API keys: one contract suite against SQLite, PostgreSQL 15 and MariaDB (real
servers started here), plus outages, restarts, tenants and two servers on one database."""

import concurrent.futures
import os
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import dbservers  # noqa: E402
import isol8test  # noqa: E402
from isol8test import MASTER, Daemon  # noqa: E402

KEY_RE = re.compile(r"^isol8_[0-9a-f]{64}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CONFIG = {"auth": {"cacheTtlMs": 500, "timeoutMs": 2000, "lastUsedFlushMs": 200}}
HOSTILE = "x'); DROP TABLE isol8_api_keys; -- \" \\ ` \u00e9"


class Contract:
    backend = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        if cls.backend == "postgres":
            cls.server = dbservers.Postgres().init().start()
            cls.url = cls.server.url()
        elif cls.backend == "mariadb":
            cls.server = dbservers.MariaDB().init().start()
            cls.url = cls.server.url()
        else:
            cls.url = os.path.join(cls.tmp.name, "keys", "auth.db")
        cls.daemon = Daemon(config=CONFIG, args=["--auth-db", cls.url]).start()

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        if cls.server:
            cls.server.destroy()
        assert rc == 0, cls.daemon.stderr_text()[-2000:]
        isol8test.assert_nothing_left(pid)

    def create(self, expect=201, **body):
        r = self.daemon.post("/auth/keys", body)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def test_create_shape(self):
        k = self.create(name="ci")
        self.assertEqual(set(k), {"id", "key", "name", "keyPrefix", "tenantId", "expiresAt"})
        self.assertRegex(k["key"], KEY_RE)
        self.assertRegex(k["id"], UUID_RE)
        self.assertEqual(k["keyPrefix"], k["key"][:10] + "...")
        self.assertEqual(k["tenantId"], "default")
        self.assertRegex(k["expiresAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_name_required(self):
        for body in ({}, {"name": ""}, {"name": 5}):
            r = self.daemon.post("/auth/keys", body)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json(), {"error": "name is required"})

    def test_bad_fields(self):
        self.assertEqual(self.daemon.post("/auth/keys", {"name": "a", "ttlMs": -1}).status, 400)
        self.assertEqual(self.daemon.post("/auth/keys", {"name": "a", "tenantId": ""}).status, 400)
        self.assertEqual(self.daemon.post("/auth/keys", {"name": "a", "tenantId": "x" * 200}).status, 400)

    def test_hostile_names_are_just_data(self):
        k = self.create(name=HOSTILE, tenantId=HOSTILE)
        listed = self.daemon.get("/auth/keys").json()["keys"]
        mine = [x for x in listed if x["id"] == k["id"]][0]
        self.assertEqual((mine["name"], mine["tenantId"]), (HOSTILE, HOSTILE))
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)

    def test_db_key_authenticates(self):
        k = self.create(name="user")
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)
        res = self.daemon.execute({"code": "echo via-db-key", "runtime": "bash"}, key=k["key"])
        self.assertEqual(res["stdout"], "via-db-key")

    def test_last_used_is_recorded(self):
        k = self.create(name="lu")
        before = [x for x in self.daemon.get("/auth/keys").json()["keys"] if x["id"] == k["id"]][0]
        self.assertIsNone(before["lastUsedAt"])
        self.daemon.get("/queue/status", key=k["key"])
        time.sleep(0.8)
        after = [x for x in self.daemon.get("/auth/keys").json()["keys"] if x["id"] == k["id"]][0]
        self.assertIsNotNone(after["lastUsedAt"])

    def test_db_key_cannot_manage_keys(self):
        k = self.create(name="plain")
        for method, path in (("POST", "/auth/keys"), ("GET", "/auth/keys"), ("POST", "/auth/login"),
                             ("DELETE", f"/auth/keys/{k['id']}"), ("POST", "/cleanup")):
            r = self.daemon.request(method, path, body={"name": "x"} if method == "POST" else None, key=k["key"])
            self.assertEqual(r.status, 403, (method, path))
            self.assertEqual(r.json(), {"error": "Master key required for this operation"})

    def test_list_newest_first_and_by_tenant(self):
        a = self.create(name="a", tenantId="t-list")
        time.sleep(0.01)
        b = self.create(name="b", tenantId="t-list")
        self.create(name="c", tenantId="t-other")
        keys = self.daemon.get("/auth/keys?tenantId=t-list").json()["keys"]
        self.assertEqual([k["id"] for k in keys], [b["id"], a["id"]])
        self.assertEqual(set(keys[0]), {"id", "name", "keyPrefix", "tenantId", "createdAt", "expiresAt", "lastUsedAt", "revoked"})
        self.assertNotIn("key", keys[0])
        everything = self.daemon.get("/auth/keys").json()["keys"]
        self.assertGreaterEqual(len(everything), 3)
        stamps = [k["createdAt"] for k in everything]
        self.assertEqual(stamps, sorted(stamps, reverse=True))

    def test_revoke(self):
        k = self.create(name="temp")
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)
        r = self.daemon.request("DELETE", f"/auth/keys/{k['id']}")
        self.assertEqual((r.status, r.json()), (200, {"ok": True, "id": k["id"]}))
        # at once on this server, cache or not
        r = self.daemon.get("/queue/status", key=k["key"])
        self.assertEqual((r.status, r.json()), (403, {"error": "Invalid API key"}))
        listed = [x for x in self.daemon.get("/auth/keys").json()["keys"] if x["id"] == k["id"]]
        self.assertTrue(listed[0]["revoked"])
        r = self.daemon.request("DELETE", "/auth/keys/00000000-0000-4000-8000-000000000000")
        self.assertEqual((r.status, r.json()), (404, {"error": "Key not found"}))
        r = self.daemon.request("DELETE", "/auth/keys/nonsense")
        self.assertEqual(r.status, 404)

    def test_expired_key(self):
        k = self.create(name="short", ttlMs=400)
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)
        time.sleep(1.0)
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 403)

    def test_wrong_keys(self):
        for key in ("isol8_" + "0" * 64, "isol8_short", "isol8_" + "g" * 64, "x" * 500):
            r = self.daemon.get("/queue/status", key=key)
            self.assertEqual((r.status, r.json()), (403, {"error": "Invalid API key"}), key)

    def test_login(self):
        r = self.daemon.post("/auth/login", None)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"token", "expiresAt", "keyId"})
        self.assertRegex(body["token"], KEY_RE)
        self.assertEqual(self.daemon.get("/queue/status", key=body["token"]).status, 200)
        r = self.daemon.post("/auth/login", {"name": "cli", "tenantId": "t-login", "ttlMs": 60000})
        listed = self.daemon.get("/auth/keys?tenantId=t-login").json()["keys"]
        self.assertEqual(listed[0]["name"], "cli")

    def test_other_tenant_cannot_use_a_session(self):
        # Session ids are per tenant: b's "shared-name" is b's own, empty session.
        a = self.create(name="a", tenantId="tenant-a")["key"]
        b = self.create(name="b", tenantId="tenant-b")["key"]
        body = {"request": {"code": "echo secret > /sandbox/s; echo a", "runtime": "bash"}, "sessionId": "shared-name"}
        self.assertEqual(self.daemon.post("/execute", body, key=a).status, 200)
        r = self.daemon.post("/execute", {"request": {"code": "cat /sandbox/s", "runtime": "bash"}, "sessionId": "shared-name"}, key=b)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("secret", r.json()["stdout"])
        self.assertEqual(r.json()["exitCode"], 1)
        r = self.daemon.get("/file?sessionId=shared-name&path=s", key=b)
        self.assertEqual(r.status, 404)
        self.assertEqual([s["tenantId"] for s in self.daemon.get("/sessions", key=b).json()["sessions"]], ["tenant-b"])
        self.assertEqual([s["tenantId"] for s in self.daemon.get("/sessions", key=a).json()["sessions"]], ["tenant-a"])
        self.assertEqual(sorted(s["tenantId"] for s in self.daemon.get("/sessions").json()["sessions"]
                                if s["id"] == "shared-name"), ["tenant-a", "tenant-b"])
        # b's delete does not touch a's session
        self.daemon.request("DELETE", "/session/shared-name", key=b)
        self.assertEqual(self.daemon.get("/file?sessionId=shared-name&path=s", key=a).status, 200)
        self.daemon.request("DELETE", "/session/shared-name", key=a)


class SqliteKeys(Contract, unittest.TestCase):
    backend = "sqlite"

    def test_file_permissions_and_restart(self):
        st = os.stat(self.url)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.url)).st_mode & 0o777, 0o700)
        k = self.create(name="survivor")
        d2 = Daemon(config=CONFIG, args=["--auth-db", self.url]).start()
        try:
            self.assertEqual(d2.get("/queue/status", key=k["key"]).status, 200)
        finally:
            self.assertEqual(d2.stop(), 0)

    def test_key_hash_only(self):
        k = self.create(name="hashed")
        with open(self.url, "rb") as f:
            data = f.read()
        wal = self.url + "-wal"
        if os.path.exists(wal):
            data += open(wal, "rb").read()
        self.assertNotIn(k["key"].encode(), data)


class ServerBacked(Contract):
    """What only a database server shows: outages and several isol8 servers sharing it."""

    def test_outage_and_recovery(self):
        k = self.create(name="outage")
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)
        self.server.stop()
        time.sleep(0.7)   # past the cache
        t0 = time.time()
        r = self.daemon.get("/queue/status", key=k["key"])
        self.assertEqual((r.status, r.json()), (503, {"error": "Auth database unavailable"}))
        self.assertLess(time.time() - t0, 4)
        self.assertEqual(self.daemon.get("/queue/status").status, 200)   # the master key needs no database
        self.assertEqual(self.daemon.get("/auth/keys").status, 503)
        for secret in ("postgres://", "s3cr3t-pw"):
            self.assertNotIn(secret, self.daemon.stderr_text())
        self.server.start()
        deadline = time.time() + 15
        while time.time() < deadline and self.daemon.get("/queue/status", key=k["key"]).status != 200:
            time.sleep(0.2)
        self.assertEqual(self.daemon.get("/queue/status", key=k["key"]).status, 200)

    def test_two_servers_share_keys(self):
        other = Daemon(config=CONFIG, args=["--auth-db", self.url]).start()
        try:
            k = self.create(name="shared")
            self.assertEqual(other.get("/queue/status", key=k["key"]).status, 200)
            self.daemon.request("DELETE", f"/auth/keys/{k['id']}")
            time.sleep(0.7)   # the other server's cache lifetime
            self.assertEqual(other.get("/queue/status", key=k["key"]).status, 403)
        finally:
            self.assertEqual(other.stop(), 0)


@unittest.skipUnless(dbservers.postgres_available(), "PostgreSQL 15 is not installed")
class PostgresKeys(ServerBacked, unittest.TestCase):
    backend = "postgres"

    def test_revocation_reaches_every_server_at_once(self):
        # LISTEN/NOTIFY: the other servers drop a revoked key from their caches when the
        # revocation commits, however long their cache keeps entries (here a minute).
        cached = dict(CONFIG, auth=dict(CONFIG["auth"], cacheTtlMs=60000))
        others = [Daemon(config=cached, args=["--auth-db", self.url]).start() for _ in range(2)]
        try:
            k = self.create(name="revoke-everywhere")
            for o in others:
                self.assertEqual(o.get("/queue/status", key=k["key"]).status, 200)   # now cached there
            t0 = time.monotonic()
            self.assertEqual(self.daemon.request("DELETE", f"/auth/keys/{k['id']}").status, 200)
            revoked_at = time.monotonic()
            waits = []
            for o in others:
                while o.get("/queue/status", key=k["key"]).status != 403:
                    self.assertLess(time.monotonic() - revoked_at, 2, "the revocation never reached the other server")
                    time.sleep(0.002)
                waits.append((time.monotonic() - revoked_at) * 1000)
            print(f"# revocation answered in {(revoked_at - t0) * 1000:.1f} ms; refused by the other servers "
                  f"{', '.join(f'{w:.1f}' for w in waits)} ms after")
            self.assertLess(max(waits), 100, waits)
        finally:
            for o in others:
                self.assertEqual(o.stop(), 0)


@unittest.skipUnless(dbservers.mariadb_available(), "MariaDB is not installed")
class MariaDBKeys(ServerBacked, unittest.TestCase):
    backend = "mariadb"


class TenantQueueShare(unittest.TestCase):
    def test_one_tenant_cannot_fill_the_queue(self):
        with tempfile.TemporaryDirectory() as d:
            dm = Daemon(config={"maxConcurrent": 1, "queue": {"maxSize": 4, "maxPerTenant": 1}, "poolSize": 2},
                        args=["--auth-db", os.path.join(d, "k.db")]).start()
            try:
                a = dm.post("/auth/keys", {"name": "a", "tenantId": "tenant-a"}).json()["key"]
                b = dm.post("/auth/keys", {"name": "b", "tenantId": "tenant-b"}).json()["key"]
                slow = {"request": {"code": "sleep 1.5; echo done", "runtime": "bash"}}
                with concurrent.futures.ThreadPoolExecutor(4) as ex:
                    running = ex.submit(dm.post, "/execute", slow, key=a)
                    time.sleep(0.4)
                    queued_a = ex.submit(dm.post, "/execute", slow, key=a)
                    time.sleep(0.3)
                    over = dm.post("/execute", slow, key=a)
                    self.assertEqual(over.status, 429)
                    queued_b = ex.submit(dm.post, "/execute", {"request": {"code": "echo b", "runtime": "bash"}}, key=b)
                    self.assertEqual(running.result().status, 200)
                    self.assertEqual(queued_a.result().status, 200)
                    self.assertEqual(queued_b.result().json()["stdout"], "b")
            finally:
                self.assertEqual(dm.stop(), 0)


class AuthOff(isol8test.DaemonTestCase):
    def test_auth_routes_without_db(self):
        for method, path in (("POST", "/auth/keys"), ("GET", "/auth/keys"), ("POST", "/auth/login"),
                             ("DELETE", "/auth/keys/00000000-0000-4000-8000-000000000000")):
            r = self.daemon.request(method, path, body={"name": "x"} if method == "POST" else None)
            self.assertEqual((r.status, r.json()), (400, {"error": "DB-backed auth is not enabled"}), path)
        self.assertEqual(self.daemon.get("/auth/keys", key="isol8_" + "a" * 64).status, 403)

    def test_auth_db_flag_forms(self):
        with tempfile.TemporaryDirectory() as d:
            for args in (["--auth-db", os.path.join(d, "a.db")], [f"--auth-db={os.path.join(d, 'b.db')}"]):
                dm = Daemon(args=args).start()
                try:
                    self.assertEqual(dm.post("/auth/keys", {"name": "x"}).status, 201)
                finally:
                    self.assertEqual(dm.stop(), 0)
            # a bare --auth-db is SQLite at ~/.isol8/auth.db
            dm = Daemon(args=["--auth-db"], env={"HOME": d}).start()
            try:
                self.assertEqual(dm.post("/auth/keys", {"name": "x"}).status, 201)
                self.assertTrue(os.path.exists(os.path.join(d, ".isol8", "auth.db")))
            finally:
                self.assertEqual(dm.stop(), 0)


if __name__ == "__main__":
    isol8test.main()
