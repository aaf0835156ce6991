#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Network "filtered": the daemon's proxy on 127.0.0.1:8118 in the sandbox, on loopback only.

The daemon runs in a mount namespace of its own with an /etc/hosts that names the test's
servers (127.0.0.2, the only address network.allowedAddresses lets through), a private address
and the metadata address; the sandboxed programs are curl, Python's urllib and pip."""

import glob
import json
import os
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
import netservers  # noqa: E402
from isol8test import Daemon, DaemonTestCase  # noqa: E402

HOSTS = """127.0.0.1 localhost
127.0.0.2 allowed.test other.test tls.test pypi.test blocked.test
127.0.0.3 loopback3.test
10.1.2.3 private.test
169.254.169.254 metadata.test
100.64.0.1 cgnat.test
::1 v6loop.test
"""


class Filtered(DaemonTestCase):
    daemon_files = {"/etc/hosts": HOSTS}

    @classmethod
    def setUpClass(cls):
        cls.http = netservers.HttpServer("127.0.0.2", routes={"/big": b"y" * 300000})
        cls.ca = netservers.TestCA(["tls.test"])
        cls.tls = netservers.HttpServer("127.0.0.2", tls_context=cls.ca.server_context())
        wheel = netservers.build_wheel("isol8probe", "1.0", "ANSWER = 42\n")
        cls.pypi = netservers.HttpServer("127.0.0.2", routes=netservers.pypi_routes("isol8probe", "1.0", wheel))
        cls.flood = netservers.DribbleServer("127.0.0.2", chunk=65536, interval=0)
        cls.slow = netservers.DribbleServer("127.0.0.2", chunk=16, interval=0.5)
        cls.auditdir = tempfile.TemporaryDirectory(prefix="isol8-audit-")
        ports = [cls.http.port, cls.tls.port, cls.pypi.port, cls.flood.port, cls.slow.port]
        cls.config = {
            "security": {"allowedNetworks": ["none", "filtered"]},
            "network": {"allowedAddresses": ["127.0.0.2/32"], "allowedPorts": ports,
                        "whitelist": [r"\.test$"], "blacklist": [r"^blocked\."],
                        "maxBytes": "2m", "maxConnections": 4, "connectTimeoutMs": 3000},
            "audit": {"destination": "file", "logDir": cls.auditdir.name},
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for s in (cls.http, cls.tls, cls.pypi, cls.flood, cls.slow):
            s.close()

    def run_filtered(self, cmd, options=None, **fields):
        opts = {"network": "filtered", "logNetwork": True}
        opts.update(options or {})
        req = {"cmd": cmd, "timeoutMs": 20000}
        req.update(fields)
        return self.daemon.execute(req, opts)

    def audit_records(self):
        out = []
        for path in glob.glob(os.path.join(self.auditdir.name, "*.jsonl")):
            with open(path) as f:
                out += [json.loads(line) for line in f if line.strip()]
        return out

    # -- reaching what is allowed --

    def test_curl_http_through_the_proxy(self):
        n = len(self.http.requests)
        res = self.run_filtered(f"curl -sS http://allowed.test:{self.http.port}/hello?secret=1")
        self.assertEqual(res["exitCode"], 0, res)
        self.assertEqual(res["stdout"], f"hello /hello?secret=1 host=allowed.test:{self.http.port}")
        self.assertEqual(len(self.http.requests), n + 1)
        method, path, host, _, headers = self.http.requests[-1]
        self.assertEqual((method, path), ("GET", "/hello?secret=1"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertNotIn("proxy-connection", headers)
        logs = res["networkLogs"]
        self.assertEqual(len(logs), 1, logs)
        self.assertEqual(logs[0]["method"], "GET")
        self.assertEqual(logs[0]["host"], "allowed.test")
        self.assertEqual(logs[0]["path"], "/hello")          # the query stays out of the log
        self.assertEqual(logs[0]["action"], "ALLOW")
        self.assertIsInstance(logs[0]["durationMs"], int)
        self.assertRegex(logs[0]["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        ru = res["resourceUsage"]
        self.assertGreater(ru["networkBytesIn"], len(res["stdout"]))
        self.assertGreater(ru["networkBytesOut"], 40)

    def test_byte_counters_follow_the_body(self):
        res = self.run_filtered(f"curl -sS -o /dev/null -w '%{{size_download}}' http://allowed.test:{self.http.port}/big")
        self.assertEqual(res["stdout"], "300000", res)
        self.assertGreaterEqual(res["resourceUsage"]["networkBytesIn"], 300000)
        self.assertLess(res["resourceUsage"]["networkBytesIn"], 301000)

    def test_python_urllib(self):
        code = ("import urllib.request\n"
                f"print(urllib.request.urlopen('http://other.test:{self.http.port}/py').read().decode().strip())\n")
        res = self.daemon.execute({"code": code, "runtime": "python", "timeoutMs": 20000},
                                  {"network": "filtered", "logNetwork": True})
        self.assertEqual(res["stdout"], f"hello /py host=other.test:{self.http.port}", res)

    def test_curl_https_through_connect(self):
        res = self.run_filtered(f"curl -sS --cacert /sandbox/ca.pem https://tls.test:{self.tls.port}/tls",
                                files={"ca.pem": self.ca.ca_text()})
        self.assertEqual(res["exitCode"], 0, res)
        self.assertEqual(res["stdout"], f"hello /tls host=tls.test:{self.tls.port}")
        log = res["networkLogs"]
        self.assertEqual([(e["method"], e["host"], e["path"], e["action"]) for e in log],
                         [("CONNECT", "tls.test", None, "ALLOW")])
        # TLS went end to end: the bytes counted are more than the plain answer.
        self.assertGreater(res["resourceUsage"]["networkBytesIn"], 1000)

    def test_tls_server_name_must_pass_the_rules_too(self):
        # A tunnel to an allowed host may not carry a TLS handshake for a name the rules refuse
        # (a CDN hosts many names on one address): the name is checked like the host.
        prog = (
            "import socket, ssl, sys\n"
            "for name in sys.argv[1:]:\n"
            "    s = socket.create_connection(('127.0.0.1', 8118), timeout=5)\n"
            f"    s.sendall(b'CONNECT tls.test:{self.tls.port} HTTP/1.1\\r\\n\\r\\n')\n"
            "    head = b''\n"
            "    while not head.endswith(b'\\r\\n\\r\\n'):\n"
            "        head += s.recv(1)\n"
            "    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
            "    try:\n"
            "        t = ctx.wrap_socket(s, server_hostname=name)\n"
            "        t.sendall(b'GET /sni HTTP/1.0\\r\\n\\r\\n')\n"
            "        data = b''\n"
            "        while True:\n"
            "            b = t.recv(4096)\n"
            "            if not b:\n"
            "                break\n"
            "            data += b\n"
            "        print(name, 'ok' if b'hello /sni' in data else 'no answer')\n"
            "    except (OSError, ssl.SSLError) as e:\n"
            "        print(name, 'refused')\n")
        res = self.run_filtered("python3 /sandbox/sni.py tls.test other.test blocked.test", files={"sni.py": prog})
        self.assertEqual(res["stdout"].split("\n"), ["tls.test ok", "other.test ok", "blocked.test refused"], res)
        self.assertEqual([(e["method"], e["host"], e["action"]) for e in res["networkLogs"]],
                         [("CONNECT", "tls.test", "ALLOW")] * 2 + [("CONNECT", "tls.test", "BLOCK")], res)
        rec = [r for r in self.audit_records() if r.get("ISOL8_EXECUTION_ID") == res["executionId"] and
               r.get("event") == "network-blocked"]
        self.assertEqual(len(rec), 1, rec)
        self.assertIn('TLS server name "blocked.test"', rec[0]["ISOL8_NETWORK_REASON"])

    def test_pip_download_from_a_local_index(self):
        res = self.run_filtered(
            f"python3 -m pip download --no-cache-dir --disable-pip-version-check --no-deps -d /sandbox/dl "
            f"--trusted-host pypi.test --index-url http://pypi.test:{self.pypi.port}/simple/ isol8probe >/dev/null && ls /sandbox/dl && "
            f"cd /sandbox/dl && python3 -c \"import zipfile;print(zipfile.ZipFile('isol8probe-1.0-py3-none-any.whl').read('isol8probe/__init__.py').decode())\"",
            options={"timeoutMs": 60000})
        self.assertEqual(res["exitCode"], 0, res)
        self.assertIn("isol8probe-1.0-py3-none-any.whl", res["stdout"])
        self.assertIn("ANSWER = 42", res["stdout"])
        self.assertTrue(all(e["action"] == "ALLOW" and e["host"] == "pypi.test" for e in res["networkLogs"]), res)

    # -- what is refused --

    def assert_blocked(self, res, host, reason, times=1):
        self.assertIn(f"blocked: {reason}", res["stdout"] + res["stderr"], res)
        blocked = [e for e in res["networkLogs"] if e["action"] == "BLOCK"]
        self.assertEqual([e["host"] for e in blocked], [host] * times, res)

    def test_blacklisted_host(self):
        n = len(self.http.requests)
        res = self.run_filtered(f"curl -sS http://blocked.test:{self.http.port}/x; echo; curl -s -o /dev/null -w '%{{http_code}}' http://blocked.test:{self.http.port}/x")
        self.assert_blocked(res, "blocked.test", "the host is not allowed by the server's network rules", times=2)
        self.assertTrue(res["stdout"].endswith("403"), res)
        self.assertEqual(len(self.http.requests), n)

    def test_host_outside_the_whitelist(self):
        res = self.run_filtered(f"curl -sS http://localhost.localdomain:{self.http.port}/x")
        self.assertEqual(res["networkLogs"][0]["action"], "BLOCK", res)
        self.assertIn("not allowed by the server's network rules", res["stdout"])

    def test_private_metadata_cgnat_and_other_loopback_addresses(self):
        for host, shown in (("private.test", "10.1.2.3"), ("metadata.test", "169.254.169.254"),
                            ("cgnat.test", "100.64.0.1"), ("loopback3.test", "127.0.0.3")):
            res = self.run_filtered(f"curl -sS http://{host}:{self.http.port}/x")
            self.assert_blocked(res, host, f"the host resolves to a private or special address ({shown})")
        # Address literals, IPv6 and the IPv4-mapped form too (the whitelist lets no literal
        # through either: two reasons, one answer).
        for url in (f"http://169.254.169.254:{self.http.port}/latest/meta-data/",
                    f"http://[::ffff:169.254.169.254]:{self.http.port}/", f"http://[::1]:{self.http.port}/"):
            res = self.run_filtered(f"curl -sS --noproxy '' --proxy http://127.0.0.1:8118 '{url}'")
            self.assertEqual([e["action"] for e in res["networkLogs"]], ["BLOCK"], res)

    def test_blocked_requests_are_audited(self):
        res = self.run_filtered(f"curl -s http://blocked.test:{self.http.port}/audit-me", options={"logNetwork": False})
        self.assertNotIn("networkLogs", res)
        rec = [r for r in self.audit_records() if r.get("ISOL8_EXECUTION_ID") == res["executionId"] and
               r.get("ISOL8_EVENT", r.get("event")) in ("network-blocked",) or
               (r.get("ISOL8_EXECUTION_ID") == res["executionId"] and r.get("ISOL8_NETWORK_HOST"))]
        self.assertEqual(len(rec), 1, self.audit_records()[-3:])
        self.assertEqual(rec[0]["ISOL8_NETWORK_HOST"], "blocked.test")
        self.assertEqual(rec[0]["ISOL8_NETWORK_METHOD"], "GET")

    def test_port_not_allowed(self):
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            s.listen(1)
            port = s.getsockname()[1]
            res = self.run_filtered(f"curl -sS http://allowed.test:{port}/; curl -sS -p https://allowed.test:{port}/")
            self.assertEqual([e["action"] for e in res["networkLogs"]], ["BLOCK", "BLOCK"], res)
            self.assertIn("the port is not in the server's network.allowedPorts", res["stdout"] + res["stderr"])
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.accept()

    def test_request_filter_only_narrows(self):
        res = self.run_filtered(f"curl -sS http://allowed.test:{self.http.port}/a; echo; curl -sS http://other.test:{self.http.port}/b",
                                options={"networkFilter": {"whitelist": ["^allowed\\."]}})
        self.assertEqual([(e["host"], e["action"]) for e in res["networkLogs"]],
                         [("allowed.test", "ALLOW"), ("other.test", "BLOCK")], res)
        self.assertIn("not allowed by this run's networkFilter", res["stdout"])
        # A run's whitelist cannot widen the server's: blocked.test stays blocked.
        res = self.run_filtered(f"curl -sS http://blocked.test:{self.http.port}/",
                                options={"networkFilter": {"whitelist": [".*"], "blacklist": []}})
        self.assertEqual(res["networkLogs"][0]["action"], "BLOCK", res)
        res = self.run_filtered(f"curl -sS http://allowed.test:{self.http.port}/",
                                options={"networkFilter": {"blacklist": ["ALLOWED"]}})   # case-insensitive
        self.assertEqual(res["networkLogs"][0]["action"], "BLOCK", res)

    def test_bad_filter_is_a_clear_400(self):
        r = self.daemon.post("/execute", {"request": {"cmd": "true"},
                                          "options": {"network": "filtered", "networkFilter": {"whitelist": ["(unclosed"]}}})
        self.assertEqual(r.status, 400)
        self.assertIn("options.networkFilter.whitelist[0]: invalid regular expression", r.json()["error"])
        r = self.daemon.post("/execute", {"request": {"cmd": "true"},
                                          "options": {"network": "filtered", "networkFilter": {"blacklist": "x"}}})
        self.assertEqual(r.status, 400)
        self.assert_healthy()

    def test_a_program_that_ignores_the_proxy_reaches_nothing(self):
        n = self.http.connections
        res = self.run_filtered(
            f"curl -sS --noproxy '*' --connect-timeout 3 http://127.0.0.2:{self.http.port}/; echo rc=$?; "
            "python3 -c \"import socket\ntry:\n socket.create_connection(('10.1.2.3', 80), timeout=2)\nexcept OSError as e: print('direct:', e.errno)\"; "
            "tail -n +2 /proc/net/route | grep -c . || true")
        self.assertIn("rc=7", res["stdout"], res)
        self.assertIn("direct: 101", res["stdout"], res)     # ENETUNREACH: no route at all
        self.assertTrue(res["stdout"].strip().endswith("\n0"), res)   # no route at all
        self.assertEqual(self.http.connections, n)
        self.assertEqual(res["networkLogs"], [])

    def test_env_and_no_proxy(self):
        res = self.run_filtered("env | grep -i _proxy | sort")
        self.assertEqual(res["stdout"].split("\n"), [
            "HTTPS_PROXY=http://127.0.0.1:8118", "HTTP_PROXY=http://127.0.0.1:8118", "NO_PROXY=localhost,127.0.0.1",
            "http_proxy=http://127.0.0.1:8118", "https_proxy=http://127.0.0.1:8118", "no_proxy=localhost,127.0.0.1"])
        res = self.daemon.execute({"cmd": "env | grep -ci _proxy || true"})
        self.assertEqual(res["stdout"], "0")

    # -- bounds --

    def test_a_flood_stops_at_the_byte_limit(self):
        res = self.run_filtered(f"curl -sS -o /dev/null http://allowed.test:{self.flood.port}/; echo rc=$?")
        self.assertNotIn("rc=0", res["stdout"], res)
        total = res["resourceUsage"]["networkBytesIn"] + res["resourceUsage"]["networkBytesOut"]
        # To the byte: reads are cut to what the budget has left.
        self.assertEqual(total, 2 * 1024 * 1024)
        # Used up: the next request of the same run is refused.
        res = self.run_filtered(f"curl -s -o /dev/null http://allowed.test:{self.flood.port}/; "
                                f"curl -sS http://allowed.test:{self.http.port}/after")
        self.assertIn("byte limit is used up", res["stdout"], res)

    def test_a_slow_upstream_stalls_nothing_else(self):
        done = {}

        def slow_run():
            done["res"] = self.run_filtered(f"curl -sS -o /dev/null http://allowed.test:{self.slow.port}/",
                                            timeoutMs=3000)
        t = threading.Thread(target=slow_run)
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        for _ in range(5):
            self.assertEqual(self.daemon.get("/health", key=None).status, 200)
            res = self.run_filtered(f"curl -sS http://allowed.test:{self.http.port}/meanwhile")
            self.assertEqual(res["exitCode"], 0, res)
        self.assertLess(time.time() - t0, 2.5)
        t.join()
        # Its timeout ended the tunnel with the run.
        self.assertEqual(done["res"]["exitCode"], 137, done["res"])
        self.assertTrue(done["res"]["timedOut"])

    def test_connections_at_once_are_bounded(self):
        script = (f"for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 3 "
                  f"http://allowed.test:{self.slow.port}/ & done; wait")
        res = self.run_filtered(script, options={"logNetwork": False})
        codes = res["stdout"].split("\n")
        self.assertEqual(len(codes), 6, res)
        self.assertEqual(codes.count("503"), 2, res)

    def test_session_keeps_filtered(self):
        sid = "net-session-1"
        body = {"request": {"cmd": f"curl -sS http://allowed.test:{self.http.port}/s1", "timeoutMs": 20000},
                "options": {"network": "filtered"}, "sessionId": sid}
        r = self.daemon.post("/execute", body)
        self.assertEqual(r.json()["stdout"], f"hello /s1 host=allowed.test:{self.http.port}", r)
        r = self.daemon.post("/execute", {"request": {"cmd": f"curl -sS http://allowed.test:{self.http.port}/s2"},
                                          "sessionId": sid})
        self.assertEqual(r.json()["stdout"], f"hello /s2 host=allowed.test:{self.http.port}", r)
        self.assertEqual(self.daemon.request("DELETE", f"/session/{sid}").status, 200)

    def test_streamed_run_carries_network_logs(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=30)
        conn.request("POST", "/execute/stream", json.dumps({
            "request": {"cmd": f"curl -sS http://allowed.test:{self.http.port}/sse"},
            "options": {"network": "filtered", "logNetwork": True}}),
            {"Authorization": f"Bearer {self.daemon.key}", "Content-Type": "application/json"})
        events = [json.loads(line[6:]) for line in conn.getresponse().read().decode().split("\n") if line.startswith("data: ")]
        conn.close()
        self.assertEqual(events[-1]["type"], "exit", events)
        self.assertEqual([(e["host"], e["action"]) for e in events[-1]["networkLogs"]], [("allowed.test", "ALLOW")])


    def test_websocket_run_carries_network_logs(self):
        import asyncio
        import websockets

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{self.daemon.port}/execute/ws",
                                          extra_headers={"Authorization": f"Bearer {self.daemon.key}"}) as ws:
                await ws.send(json.dumps({"type": "execute",
                                          "request": {"cmd": f"curl -sS http://allowed.test:{self.http.port}/ws; "
                                                             f"curl -s http://blocked.test:{self.http.port}/no"},
                                          "options": {"network": "filtered", "logNetwork": True}}))
                return await isol8test.ws_collect(ws)
        events = asyncio.run(asyncio.wait_for(go(), 30))
        exits = [e for e in events if e["type"] == "exit"]
        self.assertEqual(len(exits), 1, events)
        self.assertEqual([(e["host"], e["action"]) for e in exits[0]["networkLogs"]],
                         [("allowed.test", "ALLOW"), ("blocked.test", "BLOCK")], events)

    def test_isol8_run_net_filtered(self):
        import subprocess
        out = subprocess.run([isol8test.ISOL8, "run", "--host", f"http://127.0.0.1:{self.daemon.port}", "--key",
                              self.daemon.key, "--net", "filtered", "--cmd",
                              f"curl -sS http://allowed.test:{self.http.port}/cli"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out)
        self.assertEqual(out.stdout.strip(), f"hello /cli host=allowed.test:{self.http.port}")


class CodeUrl(DaemonTestCase):
    """request.codeUrl: fetched by the daemon (libcurl, loaded on demand) under remoteCode's rules
    and network.allowedAddresses, every redirect checked again."""
    daemon_files = {"/etc/hosts": HOSTS}

    @classmethod
    def setUpClass(cls):
        cls.ca = netservers.TestCA(["tls.test", "allowed.test"])
        prog = b"print('fetched ok')\n"
        cls.prog_sha = __import__("hashlib").sha256(prog).hexdigest()
        cls.http = netservers.HttpServer("127.0.0.2")
        port = cls.http.port

        def redirect(to):
            def route(h):
                h.send_response(302)
                h.send_header("Location", to)
                h.send_header("Content-Length", "0")
                h.end_headers()
            return route
        cls.https = netservers.HttpServer("127.0.0.2", tls_context=cls.ca.server_context(), routes={
            "/prog.py": prog, "/big.py": b"#" * 3000,
        })
        tport = cls.https.port
        cls.http.routes.update({
            "/prog.py": prog,
            "/to-private": redirect(f"http://private.test:{port}/prog.py"),
            "/to-loopback": redirect(f"http://127.0.0.1:{port}/prog.py"),
            "/to-https": redirect(f"https://tls.test:{tport}/prog.py"),
            "/loop": redirect(f"http://allowed.test:{port}/loop"),
            "/missing": None,
        })
        cls.http.routes.pop("/missing")
        cls.slow = netservers.DribbleServer("127.0.0.2", chunk=1, interval=0.5, declare_length=False)
        cls.auditdir = tempfile.TemporaryDirectory(prefix="isol8-audit-")
        cls.config = {
            "network": {"allowedAddresses": ["127.0.0.2/32"]},
            "remoteCode": {"enabled": True, "allowedSchemes": ["https", "http"], "allowedHosts": [r"\.test$"],
                           "blockedHosts": [r"^blocked\."], "maxCodeSize": "1k", "fetchTimeoutMs": 1500,
                           "caFile": cls.ca.ca_pem},
            "audit": {"destination": "file", "logDir": cls.auditdir.name},
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for s in (cls.http, cls.https, cls.slow):
            s.close()

    def fetch(self, url, expect=200, **fields):
        req = {"codeUrl": url, "runtime": "python"}
        req.update(fields)
        r = self.daemon.post("/execute", {"request": req})
        self.assertEqual(r.status, expect, r)
        return r.json()

    def test_https_with_hash(self):
        res = self.fetch(f"https://tls.test:{self.https.port}/prog.py", codeHash=self.prog_sha)
        self.assertEqual(res["stdout"], "fetched ok", res)
        res = self.fetch(f"https://tls.test:{self.https.port}/prog.py", codeHash=self.prog_sha.upper())
        self.assertEqual(res["stdout"], "fetched ok", res)
        recs = []
        for path in glob.glob(os.path.join(self.auditdir.name, "*.jsonl")):
            with open(path) as f:
                recs += [json.loads(line) for line in f if line.strip()]
        self.assertTrue(any(r.get("ISOL8_CODE_URL") == f"https://tls.test:{self.https.port}/prog.py" and
                            r.get("ISOL8_EXECUTION_ID") == res["executionId"] for r in recs))

    def test_http_needs_allow_insecure(self):
        err = self.fetch(f"http://allowed.test:{self.http.port}/prog.py", expect=400)["error"]
        self.assertEqual(err, "Code URL scheme not allowed: http (set request.allowInsecureCodeUrl to use http)")
        res = self.fetch(f"http://allowed.test:{self.http.port}/prog.py", allowInsecureCodeUrl=True)
        self.assertEqual(res["stdout"], "fetched ok", res)

    def test_hosts_and_schemes_refused(self):
        for url, want in (("ftp://allowed.test/x", "Code URL scheme not allowed: ftp"),
                          (f"https://blocked.test:{self.https.port}/prog.py", "Blocked code URL host: blocked.test"),
                          ("https://example.org/prog.py", "Blocked code URL host: example.org"),
                          (f"https://user:pw@tls.test:{self.https.port}/prog.py", "Code URL must not carry credentials"),
                          ("not a url", "Invalid code URL: not a url")):
            self.assertEqual(self.fetch(url, expect=400, allowInsecureCodeUrl=True)["error"], want)
        err = self.fetch(f"https://tls.test:{self.https.port}/prog.py", expect=400, codeHash="abc")["error"]
        self.assertIn("codeHash must be a SHA-256", err)
        r = self.daemon.post("/execute", {"request": {"codeUrl": "https://tls.test/x", "code": "print(1)", "runtime": "python"}})
        self.assertEqual(r.status, 400)

    def test_private_addresses_refused(self):
        err = self.fetch(f"http://private.test:{self.http.port}/prog.py", expect=400, allowInsecureCodeUrl=True)["error"]
        self.assertEqual(err, "Blocked code URL host: private.test resolves to a private or special address (10.1.2.3)")
        n = len(self.http.requests)
        err = self.fetch(f"http://allowed.test:{self.http.port}/to-private", expect=400, allowInsecureCodeUrl=True)["error"]
        self.assertIn("private or special address (10.1.2.3)", err)
        err = self.fetch(f"http://allowed.test:{self.http.port}/to-loopback", expect=400, allowInsecureCodeUrl=True)["error"]
        self.assertEqual(err, "Blocked code URL host: 127.0.0.1")
        # The redirects were asked for; what they pointed at never was.
        self.assertEqual([r[1] for r in self.http.requests[n:]], ["/to-private", "/to-loopback"])

    def test_redirects_checked_and_bounded(self):
        res = self.fetch(f"http://allowed.test:{self.http.port}/to-https", allowInsecureCodeUrl=True)
        self.assertEqual(res["stdout"], "fetched ok", res)
        err = self.fetch(f"http://allowed.test:{self.http.port}/loop", expect=400, allowInsecureCodeUrl=True)["error"]
        self.assertEqual(err, "Too many redirects fetching the code URL (at most 5)")

    def test_oversize_hash_mismatch_and_http_errors(self):
        err = self.fetch(f"https://tls.test:{self.https.port}/big.py", expect=400)["error"]
        self.assertEqual(err, "Remote code exceeds remoteCode.maxCodeSize (1024 bytes)")
        err = self.fetch(f"https://tls.test:{self.https.port}/prog.py", expect=400, codeHash="0" * 64)["error"]
        self.assertEqual(err, f"Code hash mismatch: expected {'0' * 64}, got {self.prog_sha}")
        self.http.routes["/gone"] = lambda h: (h.send_response(404), h.send_header("Content-Length", "0"), h.end_headers())
        err = self.fetch(f"http://allowed.test:{self.http.port}/gone", expect=400, allowInsecureCodeUrl=True)["error"]
        self.assertEqual(err, "Failed to fetch code URL: HTTP 404")

    def test_timeout_stalls_nothing(self):
        done = {}

        def slow():
            t0 = time.time()
            done["r"] = self.daemon.post("/execute", {"request": {"codeUrl": f"http://allowed.test:{self.slow.port}/",
                                                                  "runtime": "python", "allowInsecureCodeUrl": True}})
            done["t"] = time.time() - t0
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        res = self.daemon.execute({"code": "print('meanwhile')", "runtime": "python"})
        self.assertEqual(res["stdout"], "meanwhile")
        t.join()
        self.assertEqual(done["r"].status, 400)
        self.assertEqual(done["r"].json()["error"], "Fetching the code URL timed out")
        self.assertLess(done["t"], 4)


class CodeUrlDisabled(DaemonTestCase):
    def test_disabled_by_default(self):
        r = self.daemon.post("/execute", {"request": {"codeUrl": "https://example.com/x.py", "runtime": "python"}})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"], "Remote code fetching is disabled. Set remoteCode.enabled to true in the server config.")

    def test_require_hash(self):
        d = Daemon(config={"remoteCode": {"enabled": True, "requireHash": True}}).start()
        try:
            r = d.post("/execute", {"request": {"codeUrl": "https://example.com/x.py", "runtime": "python"}})
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()["error"], "request.codeHash is required by this server for request.codeUrl")
            # allowedSchemes defaults to https only: http is refused without a word about the flag.
            r = d.post("/execute", {"request": {"codeUrl": "http://example.com/x.py", "runtime": "python",
                                                "codeHash": "0" * 64, "allowInsecureCodeUrl": True}})
            self.assertEqual(r.json()["error"], "Code URL scheme not allowed: http")
        finally:
            d.stop()


class NotAllowedByDefault(unittest.TestCase):
    def test_filtered_is_the_servers_choice(self):
        d = Daemon().start()
        try:
            r = d.post("/execute", {"request": {"cmd": "true"}, "options": {"network": "filtered"}})
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()["error"], 'options.network "filtered" is not allowed by this server')
        finally:
            d.stop()

    def test_bad_rules_stop_the_server_with_the_key_named(self):
        for net, want in (({"whitelist": ["(x"]}, "network.whitelist[0]: invalid regular expression"),
                          ({"allowedAddresses": ["10.0.0.0/33"]}, "network.allowedAddresses[0]"),
                          ({"allowedPorts": [0]}, "network.allowedPorts")):
            d = Daemon(config={"network": net})
            d.start(wait=False)
            rc = d.proc.wait(15)
            d.proc.stdout.close()
            self.assertNotEqual(rc, 0)
            self.assertIn(want, d.stderr_text())


if __name__ == "__main__":
    isol8test.main()
