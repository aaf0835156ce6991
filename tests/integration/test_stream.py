#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Streaming runs: SSE with curl -N, WebSocket with python3-websockets and raw sockets."""

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import MASTER, DaemonTestCase  # noqa: E402


def parse_sse(text):
    events, comments = [], 0
    for block in text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            elif line.startswith(":"):
                comments += 1
    return events, comments


class Sse(DaemonTestCase):
    config = {"http": {"sseKeepaliveMs": 300}, "poolSize": 2}

    def curl(self, body, key=MASTER, timeout=30, extra=()):
        cmd = ["curl", "-sN", "-D", "-", "-X", "POST", f"http://127.0.0.1:{self.daemon.port}/execute/stream",
               "-H", "Content-Type: application/json", "-d", json.dumps(body)] + list(extra)
        if key:
            cmd += ["-H", f"Authorization: Bearer {key}"]
        out = subprocess.run(cmd, capture_output=True, timeout=timeout).stdout.decode()
        head, _, body_text = out.partition("\r\n\r\n")
        return head, body_text

    def test_event_order_and_headers(self):
        head, text = self.curl({"request": {"code": "echo out; echo err >&2; exit 3", "runtime": "bash"}})
        self.assertIn("HTTP/1.1 200", head)
        self.assertIn("Content-Type: text/event-stream", head)
        self.assertIn("Cache-Control: no-cache", head)
        self.assertIn("X-Accel-Buffering: no", head)
        events, _ = parse_sse(text)
        self.assertIn({"type": "stdout", "data": "out\n", "phase": "code"}, events)
        self.assertIn({"type": "stderr", "data": "err\n", "phase": "code"}, events)
        self.assertEqual(events[-1], {"type": "exit", "data": "3", "phase": "code"})

    def test_incremental_delivery(self):
        code = "import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second', flush=True)"
        p = subprocess.Popen(["curl", "-sN", "-X", "POST", f"http://127.0.0.1:{self.daemon.port}/execute/stream",
                              "-H", f"Authorization: Bearer {MASTER}", "-d",
                              json.dumps({"request": {"code": code, "runtime": "python"}})], stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        first = p.stdout.readline()
        t_first = time.time() - t0
        rest = p.stdout.read()
        t_end = time.time() - t0
        p.wait()
        self.assertIn('"data":"first', first)
        self.assertLess(t_first, 1.5)
        self.assertGreater(t_end, 1.9)
        self.assertIn('"type":"exit","data":"0","phase":"code"', rest)

    def test_timeout_pair(self):
        _, text = self.curl({"request": {"code": "sleep 10", "runtime": "bash", "timeoutMs": 500}})
        events, _ = parse_sse(text)
        self.assertEqual(events[-2:], [{"type": "error", "data": "EXECUTION TIMED OUT", "phase": "code"}, {"type": "exit", "data": "137", "phase": "code"}])

    def test_setup_phase(self):
        _, text = self.curl({"request": {"code": "echo main", "runtime": "bash", "setupScript": "echo preparing"}})
        events, _ = parse_sse(text)
        self.assertEqual(events, [{"type": "stdout", "data": "preparing\n", "phase": "setup"},
                                  {"type": "exit", "data": "0", "phase": "setup"},
                                  {"type": "stdout", "data": "main\n", "phase": "code"},
                                  {"type": "exit", "data": "0", "phase": "code"}])
        _, text = self.curl({"request": {"code": "echo main", "runtime": "bash", "setupScript": "exit 4"}})
        events, _ = parse_sse(text)
        self.assertEqual(events[-2:], [{"type": "error", "data": "Setup script failed (exit code 4)", "phase": "setup"},
                                       {"type": "exit", "data": "4", "phase": "setup"}])

    def test_keepalive_comments(self):
        _, text = self.curl({"request": {"code": "sleep 1.2; echo done", "runtime": "bash"}})
        events, comments = parse_sse(text)
        self.assertGreaterEqual(comments, 2)
        self.assertIn(": keep-alive", text)
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})

    def test_output_cap(self):
        _, text = self.curl({"request": {"code": "yes | head -c 5000000", "runtime": "bash"}, "options": {"maxOutputSize": 1000}})
        events, _ = parse_sse(text)
        out = "".join(e["data"] for e in events if e["type"] == "stdout")
        self.assertTrue(out.startswith("y\ny\n"))
        self.assertIn("--- OUTPUT TRUNCATED (5000000 bytes, limit: 1000) ---", out)
        self.assertLess(len(out), 1200)

    def test_secret_split_across_chunks(self):
        code = ("import sys, time\nfor c in 'hunter2-secret':\n    sys.stdout.write(c); sys.stdout.flush(); time.sleep(0.01)\n"
                "print()")
        _, text = self.curl({"request": {"code": code, "runtime": "python"}, "options": {"secrets": {"PW": "hunter2-secret"}}})
        events, _ = parse_sse(text)
        out = "".join(e["data"] for e in events if e["type"] == "stdout")
        self.assertEqual(out, "***\n")
        self.assertNotIn("hunter", text)

    def test_utf8_split_across_chunks(self):
        code = "import sys, time\nb = 'é€😀'.encode()\nfor i in range(len(b)):\n    sys.stdout.buffer.write(b[i:i+1]); sys.stdout.flush(); time.sleep(0.005)"
        _, text = self.curl({"request": {"code": code, "runtime": "python"}})
        events, _ = parse_sse(text)
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "é€😀")

    def test_stdin_then_eof(self):
        _, text = self.curl({"request": {"code": "cat; echo end", "runtime": "bash", "stdin": "fed\n"}})
        events, _ = parse_sse(text)
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "fed\nend\n")

    def test_no_stdin_means_eof_and_python_file(self):
        _, text = self.curl({"request": {"code": "import sys; print(len(sys.stdin.read()), __file__)", "runtime": "python",
                                         "timeoutMs": 3000}})
        events, _ = parse_sse(text)
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "0 /sandbox/main.py\n")
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})

    def test_errors_before_streaming(self):
        head, text = self.curl({"request": {"code": "x", "runtime": "cobol"}})
        self.assertIn("HTTP/1.1 400", head)
        self.assertIn("Unknown runtime", text)
        head, _ = self.curl({"request": {"code": "x", "runtime": "bash"}}, key=None)
        self.assertIn("HTTP/1.1 401", head)
        head, _ = self.curl({"request": {"code": "x", "runtime": "bash"}}, key="wrong")
        self.assertIn("HTTP/1.1 403", head)

    def test_disconnect_cancels_the_run(self):
        t0 = time.time()
        subprocess.run(["curl", "-sN", "--max-time", "1", "-X", "POST", f"http://127.0.0.1:{self.daemon.port}/execute/stream",
                        "-H", f"Authorization: Bearer {MASTER}", "-d",
                        json.dumps({"request": {"code": "sleep 60", "runtime": "bash"}})], capture_output=True)
        deadline = time.time() + 3
        while (isol8test.sandbox_user_processes() or self.daemon.get("/queue/status").json()["current"]) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(isol8test.sandbox_user_processes(), [])
        self.assertEqual(self.daemon.get("/queue/status").json()["current"], 0)
        self.assertLess(time.time() - t0, 4)
        self.assert_healthy()

    def test_slow_reader_is_bounded(self):
        # A client that reads nothing: the daemon's memory must not follow the program's output.
        with open(f"/proc/{self.daemon.pid()}/status") as f:
            before = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        s = socket.create_connection(("127.0.0.1", self.daemon.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps({"request": {"code": "yes | head -c 100000000", "runtime": "bash", "timeoutMs": 4000},
                           "options": {"maxOutputSize": 16000000}}).encode()
        s.sendall(b"POST /execute/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode() +
                  b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(2.5)
        with open(f"/proc/{self.daemon.pid()}/status") as f:
            during = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        s.close()
        self.assertLess(during - before, 32 * 1024)


def ws_url(d):
    return f"ws://127.0.0.1:{d.port}/execute/ws"


class WebSocket(DaemonTestCase):
    config = {"poolSize": 2}

    def run_ws(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 30))

    async def collect(self, ws):
        return await isol8test.ws_collect(ws)

    def connect(self, key=MASTER, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return websockets.connect(ws_url(self.daemon), extra_headers=headers, max_size=None, **kw)

    def test_execute_events_and_close(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "execute", "request": {"code": "echo a; echo b >&2; exit 2", "runtime": "bash"}}))
                events = await self.collect(ws)
                return events, ws.close_code, ws.close_reason
        events, code, reason = self.run_ws(go())
        self.assertIn({"type": "stdout", "data": "a\n", "phase": "code"}, events)
        self.assertIn({"type": "stderr", "data": "b\n", "phase": "code"}, events)
        self.assertEqual(events[-1], {"type": "exit", "data": "2", "phase": "code"})
        self.assertEqual((code, reason), (1000, "Execution complete"))

    def test_stdin_round_trip(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "execute", "interactive": True,
                                          "request": {"code": "while read l; do echo \"<$l>\"; done; echo bye", "runtime": "bash"}}))
                await ws.send(json.dumps({"type": "stdin", "data": "one\n"}))
                first = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "stdin", "data": "two\n"}))
                second = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "stdin", "data": "", "eof": True}))
                return first, second, await self.collect(ws)
        first, second, rest = self.run_ws(go())
        self.assertEqual(first["data"], "<one>\n")
        self.assertEqual(second["data"], "<two>\n")
        self.assertEqual(rest[0]["data"], "bye\n")
        self.assertEqual(rest[-1], {"type": "exit", "data": "0", "phase": "code"})

    def ws_run(self, execute, before=(), after=()):
        """Sends `before`, the execute message, then `after`; returns (events, close code, reason)."""
        async def go():
            async with self.connect() as ws:
                for m in before:
                    await ws.send(json.dumps(m))
                await ws.send(json.dumps(dict(execute, type="execute")))
                for m in after:
                    await ws.send(json.dumps(m))
                return await self.collect(ws), ws.close_code, ws.close_reason
        return self.run_ws(go())

    def test_stdin_ends_without_interactive(self):
        # Upstream clients send no stdin messages: the program must see end-of-input at once,
        # not wait for its timeout (which would end in "EXECUTION TIMED OUT" and 137).
        events, code, reason = self.ws_run({"request": {"cmd": "wc -c", "runtime": "bash", "timeoutMs": 3000}})
        self.assertEqual(events, [{"type": "stdout", "data": "0\n", "phase": "code"},
                                  {"type": "exit", "data": "0", "phase": "code"}])
        self.assertEqual((code, reason), (1000, "Execution complete"))
        events, _, _ = self.ws_run({"request": {"code": "import sys; print(len(sys.stdin.read()))", "runtime": "python",
                                                "stdin": "four", "timeoutMs": 3000}})
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "4\n")
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})

    def test_interactive_gets_request_stdin_then_live_input(self):
        events, _, _ = self.ws_run({"interactive": True, "request": {"cmd": "cat", "stdin": "first-", "timeoutMs": 5000}},
                                   after=[{"type": "stdin", "data": "second"}, {"type": "stdin", "data": "", "eof": True}])
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "first-second")
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})

    def test_messages_before_execute(self):
        # stdin before execute is kept for an interactive run; neither it nor a signal gets an answer.
        early = [{"type": "stdin", "data": "early"}, {"type": "signal", "signal": "SIGINT"},
                 {"type": "stdin", "data": "", "eof": True}]
        events, _, _ = self.ws_run({"interactive": True, "request": {"cmd": "wc -c", "timeoutMs": 5000}}, before=early)
        self.assertEqual(events, [{"type": "stdout", "data": "5\n", "phase": "code"},
                                  {"type": "exit", "data": "0", "phase": "code"}])
        # ...and ignored by a run that is not interactive.
        events, _, _ = self.ws_run({"request": {"cmd": "wc -c", "timeoutMs": 5000}}, before=early)
        self.assertEqual(events, [{"type": "stdout", "data": "0\n", "phase": "code"},
                                  {"type": "exit", "data": "0", "phase": "code"}])

    def test_stdin_to_a_run_that_is_not_interactive(self):
        events, _, _ = self.ws_run({"request": {"cmd": "sleep 0.5; echo done", "timeoutMs": 5000}},
                                   after=[{"type": "stdin", "data": "x"}])
        self.assertEqual(events[0]["type"], "error")
        self.assertIn("interactive", events[0]["data"])
        self.assertEqual(events[-2:], [{"type": "stdout", "data": "done\n", "phase": "code"},
                                       {"type": "exit", "data": "0", "phase": "code"}])

    def test_refused_request_ends_normally(self):
        for execute, want in (({"request": {"code": "x", "runtime": "cobol"}}, "Unknown runtime"),
                              ({"request": {"code": "x", "runtime": "bash", "codeUrl": "http://127.0.0.1/x"}}, "codeUrl"),
                              ({"interactive": "yes", "request": {"cmd": "true"}}, "interactive")):
            events, code, reason = self.ws_run(execute)
            self.assertEqual(len(events), 1, events)
            self.assertEqual((events[0]["type"], events[0]["phase"]), ("error", "code"))
            self.assertIn(want, events[0]["data"])
            self.assertEqual((code, reason), (1000, "Execution complete"))

    def test_every_event_has_a_phase(self):
        events, _, _ = self.ws_run({"request": {"cmd": "echo run", "setupScript": "echo set"}})
        self.assertEqual(events, [{"type": "stdout", "data": "set\n", "phase": "setup"},
                                  {"type": "exit", "data": "0", "phase": "setup"},
                                  {"type": "stdout", "data": "run\n", "phase": "code"},
                                  {"type": "exit", "data": "0", "phase": "code"}])
        events, _, _ = self.ws_run({"request": {"cmd": "sleep 5", "timeoutMs": 300}})
        self.assertEqual(events, [{"type": "error", "data": "EXECUTION TIMED OUT", "phase": "code"},
                                  {"type": "exit", "data": "137", "phase": "code"}])
        events, _, _ = self.ws_run({"request": {"cmd": "echo run", "setupScript": "exit 3"}})
        self.assertEqual(events, [{"type": "error", "data": "Setup script failed (exit code 3)", "phase": "setup"},
                                  {"type": "exit", "data": "3", "phase": "setup"}])

    def test_python_file_is_defined(self):
        events, _, _ = self.ws_run({"request": {"code": "print(__file__)", "runtime": "python"}})
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "/sandbox/main.py\n")

    def signal_run(self, sig):
        code = "trap 'echo got-INT; exit 42' INT; trap 'echo got-TERM; exit 43' TERM; echo ready; while :; do sleep 0.05; done"

        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "execute", "request": {"code": code, "runtime": "bash", "timeoutMs": 10000}}))
                self.assertEqual(json.loads(await ws.recv())["data"], "ready\n")
                await ws.send(json.dumps({"type": "signal", "signal": sig}))
                return await self.collect(ws)
        return self.run_ws(go())

    def test_sigint(self):
        events = self.signal_run("SIGINT")
        self.assertIn("got-INT\n", [e["data"] for e in events])
        self.assertEqual(events[-1], {"type": "exit", "data": "42", "phase": "code"})

    def test_sigterm(self):
        events = self.signal_run("SIGTERM")
        self.assertEqual(events[-1], {"type": "exit", "data": "43", "phase": "code"})

    def test_sigkill(self):
        events = self.signal_run("SIGKILL")
        self.assertEqual(events[-1], {"type": "exit", "data": "137", "phase": "code"})

    def test_invalid_json_closes_1003(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("{not json")
                return await self.collect(ws), ws.close_code
        events, code = self.run_ws(go())
        self.assertEqual(events, [{"type": "error", "data": "Invalid JSON message", "phase": "code"}])
        self.assertEqual(code, 1003)

    def test_unknown_type_stays_open(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "dance"}))
                err = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "execute", "request": {"code": "echo still-here", "runtime": "bash"}}))
                return err, await self.collect(ws)
        err, events = self.run_ws(go())
        self.assertEqual(err, {"type": "error", "data": "Unknown message type: dance", "phase": "code"})
        self.assertEqual(events[0]["data"], "still-here\n")

    def test_bad_key_refused_before_upgrade(self):
        for key, status in ((None, 401), ("wrong", 403)):
            async def go():
                async with self.connect(key=key):
                    pass
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                self.run_ws(go())
            self.assertEqual(cm.exception.status_code, status)

    def test_oversize_message_closes_1009(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("x" * (2 << 20))
                return await self.collect(ws), ws.close_code
        _, code = self.run_ws(go())
        self.assertEqual(code, 1009)

    def test_ping_pong(self):
        async def go():
            async with self.connect() as ws:
                pong = await ws.ping(b"hello")
                await asyncio.wait_for(pong, 5)
                return True
        self.assertTrue(self.run_ws(go()))

    def test_fragmented_message(self):
        msg = json.dumps({"type": "execute", "request": {"code": "echo fragments-ok", "runtime": "bash"}})
        parts = [msg[i:i + 7] for i in range(0, len(msg), 7)]

        async def go():
            async with self.connect() as ws:
                await ws.send(parts)   # an iterable is sent as one fragmented message
                return await self.collect(ws)
        events = self.run_ws(go())
        self.assertEqual(events[0]["data"], "fragments-ok\n")

    def test_abrupt_disconnect_frees_the_sandbox(self):
        async def go():
            ws = await self.connect()
            await ws.send(json.dumps({"type": "execute", "request": {"code": "echo up; sleep 60", "runtime": "bash"}}))
            await ws.recv()
            ws.transport.abort()
        self.run_ws(go())
        deadline = time.time() + 3
        while (isol8test.sandbox_user_processes() or self.daemon.get("/queue/status").json()["current"]) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(isol8test.sandbox_user_processes(), [])
        self.assertEqual(self.daemon.get("/queue/status").json()["current"], 0)
        self.assert_healthy()

    def test_output_flood_capped(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "execute", "request": {"code": "head -c 30000000 /dev/urandom", "runtime": "bash"},
                                          "options": {"maxOutputSize": 50000}}))
                return await self.collect(ws)
        events = self.run_ws(go())
        self.assertLess(sum(len(e["data"]) for e in events), 200000)
        self.assertIn("OUTPUT TRUNCATED", "".join(e["data"] for e in events))
        self.assertEqual(events[-1]["type"], "exit")

    def raw_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {MASTER}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        return s, head.decode()

    def read_close_code(self, s):
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        i = 0
        while i + 2 <= len(data):
            op, ln = data[i] & 0x0f, data[i + 1] & 0x7f
            i += 2
            if ln == 126:
                ln = struct.unpack(">H", data[i:i + 2])[0]
                i += 2
            if op == 8:
                return struct.unpack(">H", data[i:i + 2])[0]
            i += ln
        return None

    def test_handshake_accept_key(self):
        s, head = self.raw_handshake()
        self.assertTrue(head.startswith("HTTP/1.1 101"), head)
        self.assertIn("Upgrade: websocket", head)
        s.close()

    def test_unmasked_frame_closes_1002(self):
        s, _ = self.raw_handshake()
        payload = b'{"type":"execute"}'
        s.sendall(bytes([0x81, len(payload)]) + payload)
        self.assertEqual(self.read_close_code(s), 1002)
        s.close()

    def test_missing_version_asks_for_13(self):
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
        s.sendall((f"GET /execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {MASTER}\r\n\r\n").encode())
        self.assertIn(b"426", s.recv(200))
        s.close()


class WaitingToStart(DaemonTestCase):
    # Every start taken by sleeping runs for 2 s (cpuStartMs): a run waits before its program.
    config = {"poolSize": {"clean": 2, "dirty": 6}, "cpuStartMs": 2000}
    run_ws, collect, connect, ws_run = WebSocket.run_ws, WebSocket.collect, WebSocket.connect, WebSocket.ws_run

    def take_every_start(self):
        """Sleeping runs, started, enough to hold every start (three per two cores) for 2 s."""
        n = len(os.sched_getaffinity(0))
        busy = [threading.Thread(target=lambda: self.daemon.execute({"cmd": "sleep 2.5"})) for _ in range(n + (n + 1) // 2)]
        for t in busy:
            t.start()
        time.sleep(0.5)
        return busy

    def test_stdin_while_waiting_to_start(self):
        # Live stdin sent while the run waits for its turn to start (cpuStartMs, here 2 s with
        # every start taken by sleeping runs) reaches the program when it starts, in order.
        busy = self.take_every_start()
        t0 = time.monotonic()
        events, _, _ = self.ws_run({"interactive": True, "request": {"cmd": "cat", "stdin": "first-", "timeoutMs": 10000}},
                                   after=[{"type": "stdin", "data": "second"}, {"type": "stdin", "data": "", "eof": True}])
        waited = time.monotonic() - t0
        for t in busy:
            t.join()
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "first-second", events)
        self.assertEqual(events[-1], {"type": "exit", "data": "0", "phase": "code"})
        self.assertGreater(waited, 1.0, "the run did not wait to start: the test proves nothing")

    def test_cancelled_while_waiting_never_starts(self):
        # A client that goes away while its run waits to start: the run ends there, its
        # program never runs (it would hold its slot for 4 s).
        busy = self.take_every_start()

        async def go():
            async with self.connect() as ws:
                await ws.send(json.dumps({"type": "execute", "request": {"cmd": "sleep 4", "timeoutMs": 10000}}))
                await asyncio.sleep(0.3)
        self.run_ws(go())
        time.sleep(0.3)
        current = self.daemon.get("/queue/status").json()["current"]
        for t in busy:
            t.join()
        time.sleep(2.5)   # past the end of the pacing window the waiting run would have started in
        status = self.daemon.get("/queue/status").json()
        self.assertEqual(current, len(busy), status)
        self.assertEqual(status["current"], 0, f"the cancelled run started after all: {status}")


if __name__ == "__main__":
    isol8test.main()
