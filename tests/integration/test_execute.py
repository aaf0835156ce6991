#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""POST /execute: every request field, every result field, each runtime, each limit, bad input."""

import base64
import concurrent.futures
import json
import os
import re
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon, DaemonTestCase, raw_exchange, raw_post  # noqa: E402

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Runtimes(DaemonTestCase):
    def test_python(self):
        res = self.run_code("import sys; print('py', sys.version_info[0]); sys.exit(3)", "python")
        self.assertEqual(res["stdout"], "py 3")
        self.assertEqual(res["exitCode"], 3)
        self.assertEqual(res["runtime"], "python")

    def test_node(self):
        res = self.run_code("console.log('node', 1 + 1); console.error('err'); process.exit(4)", "node")
        self.assertEqual(res["stdout"], "node 2")
        self.assertEqual(res["stderr"], "err")
        self.assertEqual(res["exitCode"], 4)

    def test_bash(self):
        res = self.run_code("echo bash $((6*7)); echo oops >&2; exit 5", "bash")
        self.assertEqual((res["stdout"], res["stderr"], res["exitCode"]), ("bash 42", "oops", 5))

    @unittest.skipUnless(shutil.which("bun"), "bun is not installed")
    def test_bun(self):
        res = self.run_code("const n: number = 21; console.log('bun', n * 2)", "bun")
        self.assertEqual(res["stdout"], "bun 42")
        self.assertEqual(res["exitCode"], 0)
        res = self.run_code("const n: number = 1; console.log(n)", "bun", files={"x.txt": "x"})
        self.assertEqual(res["stdout"], "1")

    @unittest.skipUnless(shutil.which("deno"), "deno is not installed")
    def test_deno(self):
        res = self.run_code("const n: number = 21; console.log('deno', n * 2)", "deno")
        self.assertEqual(res["stdout"], "deno 42", res)
        res = self.run_code("console.log(Deno.readTextFileSync('/sandbox/x.txt'))", "deno", files={"x.txt": "hello"})
        self.assertEqual(res["stdout"], "hello", res)

    def test_cmd_always_runs_in_bash(self):
        res = self.daemon.execute({"cmd": "echo $BASH_VERSION | cut -c1; echo ${0##*/}", "runtime": "python"})
        self.assertEqual(res["stdout"].split("\n"), ["5", "bash"])

    def test_cmd_without_runtime(self):
        res = self.daemon.execute({"cmd": "echo ok"})
        self.assertEqual(res["stdout"], "ok")

    def test_unknown_runtime(self):
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "cobol"}})
        self.assertEqual(r.status, 400)
        self.assertTrue(r.json()["error"].startswith('Unknown runtime: "cobol". Available: python, node'), r)

    def test_large_program_runs_from_a_file(self):
        code = "x = 1\n" * 20000 + "print('big', x)"
        res = self.run_code(code, "python")
        self.assertEqual(res["stdout"], "big 1")


class ResultFields(DaemonTestCase):
    def test_shape(self):
        res = self.run_code("echo hi", "bash")
        for k in ("stdout", "stderr", "exitCode", "durationMs", "truncated", "executionId", "runtime",
                  "timestamp", "containerId", "resourceUsage"):
            self.assertIn(k, res)
        self.assertRegex(res["executionId"], UUID4)
        self.assertRegex(res["timestamp"], ISO)
        self.assertTrue(res["containerId"])
        self.assertIsInstance(res["durationMs"], int)
        self.assertFalse(res["truncated"])
        self.assertNotIn("files", res)
        ru = res["resourceUsage"]
        self.assertEqual(set(ru), {"cpuPercent", "memoryMB", "peakMemoryMB", "networkBytesIn", "networkBytesOut"})
        self.assertGreater(ru["peakMemoryMB"], 0)
        self.assertEqual(ru["networkBytesIn"], 0)

    def test_execution_ids_are_unique(self):
        ids = {self.run_code("true")["executionId"] for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_trailing_whitespace_trimmed(self):
        res = self.run_code("printf '  a b  \\n\\n\\t\\n'", "bash")
        self.assertEqual(res["stdout"], "  a b")

    def test_killed_by_signal(self):
        res = self.run_code("kill -TERM $$", "bash")
        self.assertEqual(res["exitCode"], 143)
        self.assertEqual(res["signal"], "TERM")

    def test_invalid_utf8_and_binary_output(self):
        res = self.run_code("import sys; sys.stdout.buffer.write(b'ok\\xff\\xfe\\x00end\\n')", "python")
        self.assertTrue(res["stdout"].startswith("ok\ufffd\ufffd"))
        self.assertTrue(res["stdout"].endswith("end"))

    def test_duration(self):
        res = self.run_code("sleep 0.3", "bash")
        self.assertGreaterEqual(res["durationMs"], 290)
        self.assertLess(res["durationMs"], 3000)


class RequestFields(DaemonTestCase):
    def test_env(self):
        res = self.daemon.execute({"code": "echo $A-$B; echo $HOME $PWD", "runtime": "bash", "env": {"A": "1", "B": "two"}})
        self.assertEqual(res["stdout"].split("\n"), ["1-two", "/sandbox /sandbox"])

    def test_env_bad_name(self):
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash", "env": {"A=B": "1"}}})
        self.assertEqual(r.status, 400)

    def test_stdin(self):
        res = self.daemon.execute({"code": "import sys; print(sys.stdin.read().upper())", "runtime": "python", "stdin": "abc\ndef"})
        self.assertEqual(res["stdout"], "ABC\nDEF")

    def test_stdin_larger_than_a_pipe(self):
        data = "x" * 300000
        res = self.daemon.execute({"code": "import sys; print(len(sys.stdin.read()))", "runtime": "python", "stdin": data})
        self.assertEqual(res["stdout"], "300000")

    def test_run_specs_on_both_sides_of_the_inline_limit(self):
        # Up to 16 KiB the spec (argv, environment, files) travels in the RUN message itself,
        # beyond it in a memfd (src/sandbox/protocol.h): both start the program whole.
        for size in (15000, 16500, 17000, 200000):
            res = self.daemon.execute({"code": "v=" + "x" * size + "; echo ${#v} ok", "runtime": "bash"})
            self.assertEqual(res["stdout"], f"{size} ok", size)
            res = self.daemon.execute({"code": "wc -c < in.txt", "runtime": "bash", "files": {"/sandbox/in.txt": "y" * size}})
            self.assertEqual(res["stdout"], str(size), size)

    def test_no_stdin_means_eof(self):
        res = self.run_code("read x; echo rc=$?", "bash")
        self.assertEqual(res["stdout"], "rc=1")

    def test_files_and_output_paths(self):
        res = self.daemon.execute({
            "code": "cat data/in.txt /tmp/t.txt; echo -n made > out.bin; printf '\\x00\\x01' > /tmp/b",
            "runtime": "bash",
            "files": {"data/in.txt": "hello\n", "/tmp/t.txt": "tmpfile\n"},
            "outputPaths": ["out.bin", "/tmp/b", "/sandbox/missing.txt"],
        })
        self.assertEqual(res["stdout"], "hello\ntmpfile")
        self.assertEqual(res["files"], {"/sandbox/out.bin": base64.b64encode(b"made").decode(),
                                        "/tmp/b": base64.b64encode(b"\x00\x01").decode()})

    def test_files_as_node_buffers(self):
        # Upstream's CLI sends files it read as JSON-encoded Buffers: the bytes they hold.
        res = self.daemon.execute({
            "code": "cat t.txt; od -An -tx1 bin | tr -d ' \\n'", "runtime": "bash",
            "files": {"t.txt": {"type": "Buffer", "data": list(b"buffer text\n")},
                      "bin": {"type": "Buffer", "data": [0, 1, 254, 255]}, "empty": {"type": "Buffer", "data": []}},
        })
        self.assertEqual(res["stdout"], "buffer text\n0001feff")
        for bad in ({"type": "Buffer", "data": [256]}, {"type": "Buffer", "data": [-1]}, {"type": "Buffer", "data": ["a"]},
                    {"type": "Buffer"}, {"type": "Blob", "data": [1]}, {"data": [1]}, 7):
            r = self.daemon.post("/execute", {"request": {"cmd": "true", "files": {"f": bad}}})
            self.assertEqual(r.status, 400, bad)
            self.assertIn('request.files["f"] must be a string or a Buffer', r.json()["error"])

    def test_python_file_is_defined(self):
        res = self.daemon.execute({"code": "import sys; print(__file__, sys.argv[0], __name__)", "runtime": "python"})
        self.assertEqual(res["stdout"], "/sandbox/main.py /sandbox/main.py __main__")

    def test_files_are_owned_by_the_sandbox_user(self):
        res = self.daemon.execute({"code": "stat -c '%U %a' f; echo more >> f; cat f", "runtime": "bash", "files": {"f": "x\n"}})
        self.assertEqual(res["stdout"], "sandbox 644\nx\nmore")

    def test_file_extension(self):
        res = self.daemon.execute({"code": "console.log(require('path').basename(__filename))", "runtime": "node",
                                   "fileExtension": ".cjs", "files": {"a": "b"}})
        self.assertEqual(res["stdout"], "main.cjs")

    def test_setup_script(self):
        res = self.daemon.execute({"code": "cat /sandbox/prepared", "runtime": "bash", "setupScript": "echo ready > /sandbox/prepared"})
        self.assertEqual(res["stdout"], "ready")

    def test_failing_setup_script(self):
        res = self.daemon.execute({"code": "echo never", "runtime": "bash", "setupScript": "echo setting up; exit 7"})
        self.assertEqual(res["exitCode"], 7)
        self.assertNotIn("never", res["stdout"])
        self.assertIn("Setup script failed (exit code 7)", res["stderr"])

    def test_workdir(self):
        res = self.daemon.execute({"code": "pwd; touch here", "runtime": "bash", "workdir": "sub/dir",
                                   "outputPaths": ["sub/dir/here"]})
        self.assertEqual(res["stdout"], "/sandbox/sub/dir")
        self.assertIn("/sandbox/sub/dir/here", res["files"])

    def test_workdir_outside_sandbox(self):
        for wd in ("/etc", "../x", "/sandbox/../etc", "/tmp"):
            r = self.daemon.post("/execute", {"request": {"code": "pwd", "runtime": "bash", "workdir": wd}})
            self.assertEqual(r.status, 400, wd)
            self.assertIn("workdir", r.json()["error"])

    def test_metadata(self):
        res = self.daemon.execute({"code": "echo m", "runtime": "bash", "metadata": {"userId": "u1", "job": "7"}})
        self.assertEqual(res["stdout"], "m")
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash", "metadata": {"n": 1}}})
        self.assertEqual(r.status, 400)

    def test_server_choice_fields(self):
        # installPackages: test_packages.py; bash's come from an image, and options are no packages.
        for req, want in (({"code": "x", "runtime": "bash", "installPackages": ["curl"]}, "system packages come from an image"),
                          ({"code": "x", "runtime": "python", "installPackages": ["-r/etc/passwd"]}, "not a package name")):
            r = self.daemon.post("/execute", {"request": req})
            self.assertEqual(r.status, 400)
            self.assertIn(want, r.json()["error"])
        # codeUrl is the server's choice (remoteCode.enabled, off by default): test_network.py.
        r = self.daemon.post("/execute", {"request": {"codeUrl": "https://example.com/x", "runtime": "bash"}})
        self.assertEqual(r.status, 400)
        self.assertIn("Remote code fetching is disabled", r.json()["error"])

    def test_code_and_cmd_exclusive(self):
        for req in ({"runtime": "bash"}, {"code": "a", "cmd": "b", "runtime": "bash"}, {"code": "", "runtime": "bash"}):
            r = self.daemon.post("/execute", {"request": req})
            self.assertEqual(r.status, 400)
            self.assertIn("Exactly one of", r.json()["error"])

    def test_wrong_types(self):
        cases = [
            {"request": {"code": 1, "runtime": "bash"}},
            {"request": {"code": "x", "runtime": 5}},
            {"request": {"code": "x", "runtime": "bash", "timeoutMs": "1"}},
            {"request": {"code": "x", "runtime": "bash", "files": []}},
            {"request": {"code": "x", "runtime": "bash", "outputPaths": "a"}},
            {"request": {"code": "x", "runtime": "bash", "stdin": 3}},
            {"request": {"code": "x", "runtime": "bash"}, "options": []},
            {"request": {"code": "x", "runtime": "bash"}, "options": {"pidsLimit": "many"}},
            {"request": {"code": "x", "runtime": "bash"}, "options": {"secrets": {"A": 1}}},
        ]
        for body in cases:
            r = self.daemon.post("/execute", body)
            self.assertEqual(r.status, 400, body)
            self.assertIn("error", r.json())
        self.assert_healthy()

    def test_escaping_paths(self):
        for path in ("../etc/passwd", "/etc/passwd", "/sandbox/../../etc/x", "a/../../b", "/proc/self/x", "x" * 5000):
            r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash", "files": {path: "y"}}})
            self.assertEqual(r.status, 400, path)
            r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash", "outputPaths": [path]}})
            self.assertEqual(r.status, 400, path)


class Options(DaemonTestCase):
    config = {"limits": {"maxMemory": "1g", "maxPids": 200}}

    def test_secrets_masked(self):
        res = self.daemon.execute({"code": "echo token=$TOKEN; echo $TOKEN >&2", "runtime": "bash"},
                                  {"secrets": {"TOKEN": "s3cr3t-value"}})
        self.assertEqual(res["stdout"], "token=***")
        self.assertEqual(res["stderr"], "***")

    def test_secret_split_across_writes(self):
        code = "import sys,time\nfor c in 's3cr3t-value': sys.stdout.write(c); sys.stdout.flush(); time.sleep(0.002)\nprint()"
        res = self.daemon.execute({"code": code, "runtime": "python"}, {"secrets": {"TOKEN": "s3cr3t-value"}})
        self.assertEqual(res["stdout"], "***")

    def test_timeout(self):
        t0 = time.time()
        res = self.daemon.execute({"code": "echo started; sleep 30", "runtime": "bash", "timeoutMs": 700})
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(res["exitCode"], 137)
        self.assertTrue(res["timedOut"])
        self.assertEqual(res["stdout"], "started")
        self.assertTrue(res["stderr"].endswith("\n--- EXECUTION TIMED OUT ---"))
        self.assertGreaterEqual(res["durationMs"], 650)

    def test_timeout_from_options(self):
        res = self.daemon.execute({"code": "sleep 30", "runtime": "bash"}, {"timeoutMs": 300})
        self.assertEqual(res["exitCode"], 137)
        self.assertTrue(res["timedOut"])

    def test_truncation(self):
        res = self.daemon.execute({"code": "print('a' * 5000)", "runtime": "python"}, {"maxOutputSize": 100})
        self.assertTrue(res["truncated"])
        self.assertEqual(res["stdout"], "a" * 100 + "\n\n--- OUTPUT TRUNCATED (5001 bytes, limit: 100) ---")

    def test_memory_limit_oom(self):
        code = "x=[]\nwhile True: x.append(bytearray(8*1024*1024))"
        res = self.daemon.execute({"code": code, "runtime": "python"}, {"memoryLimit": "64m"})
        self.assertEqual(res["exitCode"], 137)
        self.assertTrue(res["oomKilled"])
        self.assertFalse(res["timedOut"])
        self.assertLessEqual(res["resourceUsage"]["peakMemoryMB"], 65)
        self.assert_healthy()

    def test_memory_under_limit_is_fine(self):
        res = self.daemon.execute({"code": "x = bytearray(100*1024*1024); print(len(x))", "runtime": "python"}, {"memoryLimit": "256m"})
        self.assertEqual(res["stdout"], "104857600")
        self.assertFalse(res["oomKilled"])
        self.assertGreater(res["resourceUsage"]["peakMemoryMB"], 90)

    def test_pids_limit(self):
        code = "for i in $(seq 40); do sleep 5 & done 2>/dev/null; wait"
        res = self.daemon.execute({"code": code, "runtime": "bash", "timeoutMs": 3000}, {"pidsLimit": 10})
        self.assertTrue(res["pidsLimitHit"], res)
        self.assert_healthy()

    def test_cpu_limit(self):
        code = "import time\nt=time.time()\nwhile time.time()-t < 1.0: pass"
        res = self.daemon.execute({"code": code, "runtime": "python"}, {"cpuLimit": 0.25})
        self.assertLess(res["resourceUsage"]["cpuPercent"], 40)
        res = self.daemon.execute({"code": code, "runtime": "python"}, {"cpuLimit": 1})
        self.assertGreater(res["resourceUsage"]["cpuPercent"], 60)

    def test_sandbox_size(self):
        res = self.daemon.execute({"code": "head -c 20000000 /dev/zero > /sandbox/big; echo rc=$?", "runtime": "bash"},
                                  {"sandboxSize": "8m"})
        self.assertIn("rc=1", res["stdout"])
        self.assertIn("No space left", res["stderr"])

    def test_tmp_size(self):
        res = self.daemon.execute({"code": "head -c 20000000 /dev/zero > /tmp/big; echo rc=$?", "runtime": "bash"},
                                  {"tmpSize": "4m"})
        self.assertIn("rc=1", res["stdout"])

    def test_limits_above_server_maximum(self):
        for opts in ({"memoryLimit": "2g"}, {"pidsLimit": 500}, {"cpuLimit": 99}, {"timeoutMs": 10**9},
                     {"maxOutputSize": 10**12}, {"sandboxSize": "100g"}, {"tmpSize": "100g"}):
            r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": opts})
            self.assertEqual(r.status, 400, opts)

    def test_bad_memory_string(self):
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": {"memoryLimit": "12 potatoes"}})
        self.assertEqual(r.status, 400)
        self.assertIn("memoryLimit", r.json()["error"])

    def test_network_modes(self):
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": {"network": "host"}})
        self.assertEqual(r.status, 400)
        self.assertIn("not allowed", r.json()["error"])
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": {"network": "filtered"}})
        self.assertEqual(r.status, 400)
        res = self.daemon.execute({"code": "echo x", "runtime": "bash"}, {"network": "none"})
        self.assertEqual(res["stdout"], "x")

    def test_security_cannot_be_loosened(self):
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": {"security": {"seccomp": "unconfined"}}})
        self.assertEqual(r.status, 400)
        r = self.daemon.post("/execute", {"request": {"code": "x", "runtime": "bash"}, "options": {"readonlyRootFs": False}})
        self.assertEqual(r.status, 400)
        res = self.daemon.execute({"code": "echo ok", "runtime": "bash"}, {"security": {"seccomp": "strict"}, "readonlyRootFs": True})
        self.assertEqual(res["stdout"], "ok")


class ServerSeccompUnconfined(DaemonTestCase):
    config = {"security": {"seccomp": "unconfined"}}

    def test_the_server_default_applies_and_a_request_may_tighten_it(self):
        probe = {"code": "awk '/^Seccomp:/ {print $2}' /proc/self/status", "runtime": "bash"}
        self.assertEqual(self.daemon.execute(probe)["stdout"], "0")
        self.assertEqual(self.daemon.execute(probe, {"security": {"seccomp": "strict"}})["stdout"], "2")


class BadServerSeccomp(unittest.TestCase):
    def test_an_unknown_value_stops_the_server_with_its_name(self):
        d = Daemon(config={"security": {"seccomp": "off"}})
        try:
            with self.assertRaises(AssertionError) as cm:
                d.start()
            self.assertIn("security.seccomp", str(cm.exception))
        finally:
            d.stop()


class HostNetwork(DaemonTestCase):
    config = {"security": {"allowedNetworks": ["none", "host"]}}

    def test_host_network_when_allowed(self):
        res = self.daemon.execute({"code": "cat /proc/net/dev | grep -v lo: | tail -n +3 | wc -l", "runtime": "bash"},
                                  {"network": "host"})
        self.assertEqual(res["exitCode"], 0)
        res2 = self.daemon.execute({"code": "cat /proc/net/dev | grep -v lo: | tail -n +3 | wc -l", "runtime": "bash"})
        self.assertEqual(res2["stdout"], "0")


class Concurrency(DaemonTestCase):
    config = {"maxConcurrent": 1, "queue": {"maxSize": 1, "timeoutMs": 1500}, "poolSize": 2}

    def test_parallel_requests_queue_and_overflow(self):
        slow = {"request": {"code": "sleep 1; echo done", "runtime": "bash"}}
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            first = ex.submit(self.daemon.post, "/execute", slow)
            time.sleep(0.3)
            status = self.daemon.get("/queue/status").json()
            self.assertEqual(status["current"], 1)
            second = ex.submit(self.daemon.post, "/execute", slow)
            time.sleep(0.3)
            self.assertEqual(self.daemon.get("/queue/status").json()["pending"], 1)
            third = self.daemon.post("/execute", slow)
            self.assertEqual(third.status, 429)
            self.assertEqual(third.json(), {"error": "Too many requests — queue is full"})
            self.assertEqual(first.result().status, 200)
            self.assertEqual(second.result().status, 200)
            self.assertEqual(second.result().json()["stdout"], "done")

    def test_queue_timeout(self):
        long = {"request": {"code": "sleep 3", "runtime": "bash"}}
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            first = ex.submit(self.daemon.post, "/execute", long)
            time.sleep(0.3)
            t0 = time.time()
            second = self.daemon.post("/execute", {"request": {"code": "echo x", "runtime": "bash"}})
            self.assertEqual(second.status, 408)
            self.assertGreater(time.time() - t0, 1.2)
            self.assertEqual(first.result().status, 200)


class HalfClose(DaemonTestCase):
    """A client may send its request(s) and shut its side of the connection (socat and `nc -N`
    do, at the end of their input): what it sent is served. So a hang-up cannot be told from a
    half-close while a run goes on, and a buffered run is not cancelled by one (SSE and WebSocket
    runs are: there the client is gone for good)."""

    def exchange(self, *requests):
        data = b"".join(raw_post("/execute", json.dumps({"request": r}).encode()) for r in requests)
        return raw_exchange(self.daemon.port, data, timeout=20, half_close=True)

    def test_one_request(self):
        data = self.exchange({"cmd": "sleep 0.3; echo one"})
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 1, data[:500])
        self.assertIn(b'"stdout":"one"', data)

    def test_pipelined_requests(self):
        data = self.exchange({"cmd": "sleep 0.3; echo one"}, {"cmd": "echo two"})
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data[:500])
        self.assertLess(data.index(b'"stdout":"one"'), data.index(b'"stdout":"two"'))


class ParallelLoad(DaemonTestCase):
    config = {"maxConcurrent": 8, "poolSize": {"clean": 4, "dirty": 4}}

    def test_many_parallel_runs(self):
        def one(i):
            return self.daemon.execute({"code": f"print({i} * 2)", "runtime": "python"})
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(40)))
        self.assertEqual([r["stdout"] for r in results], [str(i * 2) for i in range(40)])


class Drain(unittest.TestCase):
    def test_sigterm_lets_running_work_finish(self):
        # drainTimeoutMs: SIGTERM stops new work and says so to a load balancer, while what
        # runs finishes and answers; then the server exits.
        d = Daemon(config={"drainTimeoutMs": 10000}).start()
        pid = d.pid()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            running = ex.submit(d.post, "/execute", {"request": {"cmd": "sleep 1.5; echo finished"}})
            time.sleep(0.5)
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            r = d.get("/health", key=None)
            self.assertEqual((r.status, r.json()["status"]), (503, "draining"))
            r = d.post("/execute", {"request": {"cmd": "true"}})
            self.assertEqual((r.status, r.json()), (503, {"error": "Server is draining"}))
            r = running.result()
            self.assertEqual((r.status, r.json()["stdout"], r.json()["exitCode"]), (200, "finished", 0), r)
        t0 = time.time()
        self.assertEqual(d.proc.wait(10), 0)
        self.assertLess(time.time() - t0, 3)
        d.stop()
        isol8test.assert_nothing_left(pid)

    def test_a_drain_is_bounded(self):
        d = Daemon(config={"drainTimeoutMs": 1000}).start()
        pid = d.pid()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            running = ex.submit(d.post, "/execute", {"request": {"cmd": "sleep 60"}})
            time.sleep(0.5)
            t0 = time.time()
            d.proc.send_signal(signal.SIGTERM)
            self.assertEqual(d.proc.wait(15), 0)
            self.assertLess(time.time() - t0, 6)
            try:
                self.assertIn(running.result().status, (200, 503))
            except Exception:
                pass  # the connection may be cut at exit
        d.stop()
        self.assertIn("still under way after the bound", d.stderr_text())
        isol8test.assert_nothing_left(pid)


class Shutdown(unittest.TestCase):
    def test_sigterm_during_runs_cancels_and_exits_zero(self):
        d = Daemon(config={"poolSize": 2}).start()
        pid = d.pid()
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            futs = [ex.submit(d.post, "/execute", {"request": {"code": "sleep 60", "runtime": "bash"}}) for _ in range(3)]
            time.sleep(1)
            t0 = time.time()
            rc = d.stop()
            self.assertEqual(rc, 0)
            self.assertLess(time.time() - t0, 10)
            for f in futs:
                try:
                    r = f.result()
                    self.assertIn(r.status, (200, 503))
                except Exception:
                    pass  # the connection may be cut at exit
        isol8test.assert_nothing_left(pid)


if __name__ == "__main__":
    isol8test.main()
