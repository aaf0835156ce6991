#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Attacks on network "filtered": request smuggling through the proxy, reaching the daemon or
other loopback services through it, CONNECT to ports not allowed, numeric host forms, the
proxy's own port, and DNS rebinding between the check and the connection.

Loopback only: the daemon runs with an /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf of
its own (a mount namespace); its DNS server is the test's, on 127.0.0.77:53."""

import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
import netservers  # noqa: E402
from isol8test import DaemonTestCase  # noqa: E402

# A raw exchange with the proxy from inside the sandbox: the bytes in argv[1] (JSON), the answer
# printed (status line, and whatever followed).
RAW = r"""
import json, socket, sys
s = socket.create_connection(("127.0.0.1", 8118), timeout=5)
s.sendall(json.loads(sys.argv[1]).encode("latin-1"))
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
print(out.decode("latin-1"))
"""


class ProxyAttacks(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = netservers.HttpServer("127.0.0.2")
        port = cls.http.port
        # The same port on 127.0.0.3: where a second lookup of a rebinding name would lead.
        cls.secret_sock = socket.socket()
        cls.secret_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        cls.secret_sock.bind(("127.0.0.3", port))
        cls.secret_sock.listen(8)
        cls.secret_sock.setblocking(False)
        cls.dns = netservers.RebindingDns("127.0.0.77", "127.0.0.2", "127.0.0.3")
        cls.daemon_files = {
            "/etc/hosts": "127.0.0.1 localhost\n127.0.0.2 allowed.test blocked.test\n",
            "/etc/resolv.conf": "nameserver 127.0.0.77\noptions timeout:1 attempts:1\n",
            "/etc/nsswitch.conf": "hosts: files dns\n",
        }
        cls.config = {
            "security": {"allowedNetworks": ["none", "filtered"]},
            "network": {"allowedAddresses": ["127.0.0.2/32"], "allowedPorts": [port], "blacklist": [r"^blocked\."]},
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.http.close()
        cls.dns.close()
        cls.secret_sock.close()

    def exchange(self, data):
        res = self.daemon.execute({"cmd": "python3 /sandbox/raw.py \"$(cat /sandbox/req.json)\"",
                                   "files": {"raw.py": RAW, "req.json": json.dumps(data)}, "timeoutMs": 20000},
                                  {"network": "filtered", "logNetwork": True})
        return res["stdout"], res

    def assert_secret_untouched(self):
        with self.assertRaises(BlockingIOError):
            self.secret_sock.accept()

    def test_pipelined_second_request_is_not_forwarded(self):
        p = self.http.port
        n = len(self.http.requests)
        out, _ = self.exchange(f"GET http://allowed.test:{p}/one HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 0\r\n\r\n"
                               f"GET http://blocked.test:{p}/two HTTP/1.1\r\nHost: blocked.test\r\n\r\n"
                               f"GET /three HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.0 200") or out.startswith("HTTP/1.1 200"), out)
        self.assertEqual([r[1] for r in self.http.requests[n:]], ["/one"])

    def test_body_beyond_content_length_is_dropped(self):
        p = self.http.port
        n = len(self.http.requests)
        out, _ = self.exchange(f"POST http://allowed.test:{p}/post HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
                               f"helloGET /smuggled HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
        self.assertIn(" 200 ", out.split("\r\n")[0])
        self.assertEqual([(r[1], r[3]) for r in self.http.requests[n:]], [("/post", b"hello")])

    def test_ambiguous_heads_are_refused(self):
        p = self.http.port
        n = len(self.http.requests)
        cases = [
            (f"POST http://allowed.test:{p}/ HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"),
            (f"POST http://allowed.test:{p}/ HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 9\r\n\r\nabcd", "400"),
            (f"GET http://allowed.test:{p}/ HTTP/1.1\nHost: x\n\n\r\n\r\n", "400"),
            (f"GET http://allowed.test:{p}/ HTTP/1.1\r\nX-A: 1\r\n folded: yes\r\n\r\n", "400"),
            (f"GET http://allowed.test:{p}/ HTTP/1.1\r\nContent-Length : 0\r\n\r\n", "400"),
            (f"GET http://allowed.test:{p}@blocked.test:{p}/ HTTP/1.1\r\n\r\n", "400"),
            (f"GET /relative HTTP/1.1\r\nHost: allowed.test:{p}\r\n\r\n", "400"),
            (f"GET http://allowed.test:{p}/ HTTP/2.0\r\n\r\n", "400"),
            ("GET http://allowed.test:99999/ HTTP/1.1\r\n\r\n", "400"),
        ]
        for data, status in cases:
            out, res = self.exchange(data)
            self.assertEqual(out.split(" ")[1] if " " in out else out, status, (data, res))
        self.assertEqual(len(self.http.requests), n)

    def test_host_header_cannot_redirect(self):
        p = self.http.port
        n = len(self.http.requests)
        out, _ = self.exchange(f"GET http://allowed.test:{p}/h HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
        self.assertIn(f"host=allowed.test:{p}", out)
        self.assertEqual(self.http.requests[n][2], f"allowed.test:{p}")

    def test_connect_to_a_port_not_allowed(self):
        out, res = self.exchange("CONNECT allowed.test:22 HTTP/1.1\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 403"), res)
        self.assertIn("network.allowedPorts", out)

    def test_the_daemon_and_loopback_services_stay_out_of_reach(self):
        # The daemon's own API port on the host's loopback, by address, name and numeric forms.
        dport = self.daemon.port
        n = len(self.http.requests)
        for target in (f"127.0.0.1:{dport}", f"localhost:{dport}", f"[::1]:{dport}", f"[::ffff:127.0.0.1]:{dport}",
                       f"[::127.0.0.1]:{dport}", f"2130706433:{dport}", f"0x7f.1:{dport}", f"127.1:{dport}",
                       f"0:{dport}", f"[64:ff9b::7f00:1]:{dport}"):
            out, res = self.exchange(f"CONNECT {target} HTTP/1.1\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 403") or out.startswith("HTTP/1.1 400"), (target, res))
        self.assertEqual(len(self.http.requests), n)
        # Only the port allowed: the daemon's is not, so the same with the allowed port.
        p = self.http.port
        for target in (f"127.0.0.1:{p}", f"localhost:{p}", f"2130706433:{p}", f"127.0.0.3:{p}"):
            out, res = self.exchange(f"CONNECT {target} HTTP/1.1\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 403"), (target, res))
            self.assertIn("private or special address", out)
        self.assert_secret_untouched()

    def test_the_proxy_port_is_not_the_programs(self):
        res = self.daemon.execute({"code": "import socket\ns = socket.socket()\n"
                                           "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                           "try:\n    s.bind(('127.0.0.1', 8118)); print('BOUND')\n"
                                           "except OSError as e:\n    print('refused', e.errno)\n",
                                   "runtime": "python"}, {"network": "filtered"})
        self.assertEqual(res["stdout"], "refused 98", res)

    def test_dns_rebinding_between_check_and_connect(self):
        p = self.http.port
        n = len(self.http.requests)
        before = self.dns.queries
        # First answer 127.0.0.2 (allowed): the proxy connects there and nowhere else.
        out, res = self.exchange(f"GET http://rebind.test:{p}/first HTTP/1.1\r\n\r\n")
        self.assertIn(" 200 ", out.split("\r\n")[0], res)
        self.assertEqual([r[1] for r in self.http.requests[n:]], ["/first"])
        self.assertEqual(self.dns.queries - before, 1)      # resolved once
        self.assert_secret_untouched()
        # Every later answer is 127.0.0.3: checked, and refused.
        out, res = self.exchange(f"GET http://rebind.test:{p}/second HTTP/1.1\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 403"), res)
        self.assertIn("(127.0.0.3)", out)
        self.assert_secret_untouched()

    def test_head_size_is_bounded(self):
        out, res = self.exchange("GET http://allowed.test/ HTTP/1.1\r\nX: " + "a" * 20000 + "\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 431"), res)
        self.assert_healthy()


if __name__ == "__main__":
    isol8test.main()
