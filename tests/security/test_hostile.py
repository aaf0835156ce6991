#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SECURITY.md, one test per hostile program that applies to a single run, through the real
daemon over HTTP. After each test the next ordinary run must succeed and no sandboxed process
may be left."""

import concurrent.futures
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
from isol8test import Daemon, DaemonTestCase  # noqa: E402

SYSCALL = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
"""


class Hostile(DaemonTestCase):
    config = {"poolSize": {"clean": 2, "dirty": 2}, "maxConcurrent": 4}

    def tearDown(self):
        # The next ordinary run still works and nothing of the hostile run is left.
        self.assert_healthy()
        deadline = time.time() + 3
        while isol8test.sandbox_user_processes() and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(isol8test.sandbox_user_processes(), [])

    def py(self, code, options=None, **fields):
        return self.run_code(code, "python", options, **fields)

    def sh(self, code, options=None, **fields):
        return self.run_code(code, "bash", options, **fields)

    # 1. fork and thread bombs
    def test_01_fork_bomb_bash(self):
        res = self.sh(":(){ :|:& };: ; sleep 2", {"pidsLimit": 32}, timeoutMs=4000)
        self.assertIn(res["exitCode"], (0, 137, 254, 1, 2))
        self.assertTrue(res["pidsLimitHit"] or res["timedOut"], res)

    def test_01_fork_bomb_python(self):
        code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
        res = self.py(code, {"pidsLimit": 32}, timeoutMs=3000)
        self.assertEqual(res["exitCode"], 137)
        self.assertTrue(res["pidsLimitHit"])
        self.assertTrue(res["timedOut"])

    def test_01_thread_bomb(self):
        code = ("import threading, time\nn = 0\ntry:\n    while True:\n"
                "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); n += 1\n"
                "except RuntimeError as e:\n    print('stopped', n > 0)")
        res = self.py(code, {"pidsLimit": 40}, timeoutMs=5000)
        self.assertIn("stopped True", res["stdout"])
        self.assertTrue(res["pidsLimitHit"])

    # 2. memory and tmpfs exhaustion
    def test_02_memory_bomb(self):
        res = self.py("x = []\nwhile True: x.append(b'x' * (16 << 20))", {"memoryLimit": "128m"})
        self.assertEqual(res["exitCode"], 137)
        self.assertTrue(res["oomKilled"])

    def test_02_fill_tmp_and_sandbox(self):
        res = self.sh("cat /dev/zero > /tmp/fill; echo tmp=$?; cat /dev/zero > /sandbox/fill; echo sb=$?",
                      {"tmpSize": "16m", "sandboxSize": "16m"})
        self.assertIn("tmp=1", res["stdout"])
        self.assertIn("sb=1", res["stdout"])
        self.assertIn("No space left on device", res["stderr"])

    # 3. JIT runtimes under the default memory limit
    def test_03_jit_runtimes_start(self):
        res = self.run_code("console.log(new Array(1e6).fill(1).length)", "node")
        self.assertEqual(res["stdout"], "1000000")
        if isol8test_has("bun"):
            self.assertEqual(self.run_code("console.log(2 ** 10)", "bun")["stdout"], "1024")

    # 4. things that try to outlive the timeout
    def test_04_busy_loop(self):
        res = self.py("while True: pass", timeoutMs=1000)
        self.assertEqual((res["exitCode"], res["timedOut"]), (137, True))

    def test_04_sleep(self):
        t0 = time.time()
        res = self.sh("sleep 1000", timeoutMs=500)
        self.assertEqual(res["exitCode"], 137)
        self.assertLess(time.time() - t0, 5)

    def test_04_blocking_read(self):
        res = self.sh("mkfifo /tmp/f; cat /tmp/f", timeoutMs=500)
        self.assertEqual((res["exitCode"], res["timedOut"]), (137, True))

    def test_04_double_fork_setsid(self):
        res = self.sh("(setsid bash -c 'trap \"\" TERM HUP; sleep 1000' &); (nohup sleep 1000 &); sleep 1000", timeoutMs=700)
        self.assertEqual(res["exitCode"], 137)
        self.assertEqual(isol8test.sandbox_user_processes(), [])

    def test_04_daemonized_child_of_a_finished_run(self):
        res = self.sh("setsid sleep 1000 & disown; echo bye")
        self.assertEqual(res["stdout"], "bye")
        self.assertEqual(isol8test.sandbox_user_processes(), [])

    # 5. output floods
    def daemon_rss_kb(self):
        with open(f"/proc/{self.daemon.pid()}/status") as f:
            return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])

    def test_05_output_flood(self):
        before = self.daemon_rss_kb()
        cases = ["yes | head -c 50000000", "head -c 50000000 /dev/zero | tr '\\0' 'a'",
                 "head -c 20000000 /dev/urandom", "yes 1>&2 | head -c 40000000 >&2; yes | head -c 40000000"]
        for code in cases:
            r = self.daemon.post("/execute", {"request": {"code": code, "runtime": "bash"}, "options": {"maxOutputSize": 65536}})
            self.assertEqual(r.status, 200)
            res = r.json()  # valid JSON whatever the bytes were
            self.assertTrue(res["truncated"])
            self.assertLess(len(r.body), 4 * 65536 + 4096)
            self.assertIn("--- OUTPUT TRUNCATED", res["stdout"] + res["stderr"])
        self.assertLess(self.daemon_rss_kb() - before, 64 * 1024)

    # 6. files and fds
    def test_06_huge_file(self):
        res = self.sh("head -c 100000000 /dev/zero > /sandbox/big; echo rc=$?", {"sandboxSize": "32m"})
        self.assertIn("rc=1", res["stdout"])

    def test_06_many_small_files(self):
        res = self.sh("cd /sandbox && for i in $(seq 3000); do : > f$i; done; ls | wc -l")
        self.assertEqual(res["stdout"], "3000")

    def test_06_fd_exhaustion(self):
        res = self.py("fs = []\ntry:\n    while True: fs.append(open('/dev/null'))\nexcept OSError as e:\n    print(e.errno, len(fs) < 2000)")
        self.assertEqual(res["stdout"], "24 True")

    # 8. a hog cannot starve the daemon
    def test_08_cpu_and_memory_hog_do_not_starve_the_daemon(self):
        hog = {"request": {"code": "for i in 1 2 3 4; do (while :; do :; done) & done; wait", "runtime": "bash", "timeoutMs": 4000},
               "options": {"cpuLimit": 2}}
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = [ex.submit(self.daemon.post, "/execute", hog) for _ in range(2)]
            time.sleep(0.5)
            worst = 0
            for _ in range(20):
                t0 = time.time()
                self.assertEqual(self.daemon.get("/health", key=None).status, 200)
                worst = max(worst, time.time() - t0)
                time.sleep(0.05)
            self.assertLess(worst, 0.5)
            for f in futs:
                self.assertEqual(f.result().json()["exitCode"], 137)

    # 9. host secrets
    def test_09_host_secrets_absent(self):
        res = self.sh("for f in /etc/shadow /root/.bashrc /etc/isol8/config.json /var/lib/isol8 /home; do "
                      "cat $f >/dev/null 2>&1 && echo READ:$f; ls $f >/dev/null 2>&1 && echo SEE:$f; done; echo end")
        self.assertEqual(res["stdout"], "end", res)
        # the daemon's own working directory and config are not there either
        res = self.sh(f"ls {self.daemon.dir.name} 2>&1; echo rc=$?")
        self.assertIn("rc=2", res["stdout"])

    def test_09_other_sandboxes_invisible(self):
        slow = {"request": {"code": "echo secret-of-a > /sandbox/mine; sleep 3", "runtime": "bash"}}
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(self.daemon.post, "/execute", slow)
            time.sleep(0.7)
            res = self.sh("ls /proc | grep -cE '^[0-9]+$'; grep -rs -D skip secret-of-a /sandbox /tmp /dev/shm /root /etc /run 2>/dev/null | head -1; echo end")
            lines = res["stdout"].split("\n")
            self.assertLess(int(lines[0]), 10)
            self.assertEqual(lines[-1], "end")
            self.assertEqual(len(lines), 2, res)
            f.result()

    # 10. read-only or absent system paths
    def test_10_system_paths_not_writable(self):
        res = self.sh("for p in /x /usr/x /etc/x /bin/x /proc/sys/kernel/hostname /sys/x /dev/x; do "
                      "echo hi > $p 2>/dev/null && echo WROTE:$p; done; echo end")
        self.assertEqual(res["stdout"], "end")
        res = self.sh("ls /sys 2>&1 | head -1; mount 2>/dev/null | grep ' / ' | grep -c ro")
        self.assertIn("No such file", res["stdout"])

    # 11. planted links asked for through the API
    def test_11_planted_symlink_and_hardlink(self):
        res = self.sh("ln -s /etc/passwd /sandbox/p; ln -s /proc/1/root/etc/passwd /sandbox/q; "
                      "ln -s ../../../../etc/passwd /sandbox/r; ln /etc/passwd /sandbox/h 2>&1; echo done",
                      outputPaths=["/sandbox/p", "/sandbox/q", "/sandbox/r", "/sandbox/h"])
        self.assertEqual(res.get("files"), {})
        self.assertIn("Invalid cross-device link", res["stdout"])

    # 13. special files as outputs
    def test_13_fifo_device_socket_outputs(self):
        code = ("mkfifo /sandbox/fifo; python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.bind('/sandbox/sock')\"; "
                "ln -s /dev/zero /sandbox/zero; echo ok")
        t0 = time.time()
        res = self.sh(code, outputPaths=["/sandbox/fifo", "/sandbox/sock", "/sandbox/zero", "/tmp"])
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(res["files"], {})

    # 14. setuid and capabilities
    def test_14_no_privileges(self):
        res = self.sh("grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|Seccomp):' /proc/self/status; su -c id root </dev/null 2>&1 | head -1; id -u")
        out = res["stdout"]
        self.assertIn("NoNewPrivs:\t1", out)
        self.assertIn("CapEff:\t0000000000000000", out)
        self.assertIn("CapPrm:\t0000000000000000", out)
        self.assertIn("Seccomp:\t2", out)
        self.assertTrue(out.endswith("1000"))
        res = self.py("import os\ntry:\n    os.setuid(0)\n    print('root!')\nexcept PermissionError:\n    print('denied')")
        self.assertEqual(res["stdout"], "denied")
        res = self.sh("mount | grep -E ' /usr ' | grep -c nosuid")
        self.assertEqual(res["stdout"], "1")

    # 15. the daemon and inherited fds
    def test_15_daemon_invisible_and_no_inherited_fds(self):
        res = self.py("import os\nprint(sorted(int(x) for x in os.listdir('/proc/self/fd')))\n"
                      "names = [open(f'/proc/{p}/comm').read().strip() for p in os.listdir('/proc') if p.isdigit()]\n"
                      "print('isol8' in names)\n"
                      "try:\n    os.listdir('/proc/1/root')\n    print('root visible')\nexcept PermissionError:\n    print('denied')\n"
                      "except FileNotFoundError:\n    print('hidden')")
        # /proc is mounted hidepid=invisible: init (pid 1) is not even there.
        self.assertEqual(res["stdout"].split("\n"), ["[0, 1, 2, 3]", "False", "hidden"])

    # 16. namespace and mount tricks
    def test_16_mount_namespace_tricks(self):
        cmds = ["mount -t tmpfs none /tmp", "umount /proc", "unshare -U true", "unshare -m true", "unshare -n true",
                "unshare -r true", "chroot / true", "nsenter -t 1 -m true", "pivot_root /tmp /tmp"]
        res = self.sh("; ".join(f"{c} >/dev/null 2>&1 && echo ALLOWED:{c.split()[0]}" for c in cmds) + "; echo end")
        self.assertEqual(res["stdout"], "end")

    # 18-20. kernel surface
    def test_18_foreign_syscall_abis(self):
        int80 = SYSCALL + ("import mmap\nm = mmap.mmap(-1, 4096, prot=mmap.PROT_READ|mmap.PROT_WRITE|mmap.PROT_EXEC)\n"
                           "m.write(bytes([0xb8,0x14,0,0,0,0xcd,0x80,0xc3]))\n"
                           "addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
                           "f = ctypes.CFUNCTYPE(ctypes.c_int)(addr)\nprint('int80 returned', f(), flush=True)")
        res = self.py(int80)
        self.assertEqual(res["exitCode"], 128 + signal.SIGSYS, res)
        self.assertNotIn("returned", res["stdout"])
        res = self.py(SYSCALL + "print('x32', sc(0x40000000 | 39), flush=True)")
        self.assertTrue(res["exitCode"] == 128 + signal.SIGSYS or "x32 (-1," in res["stdout"], res)

    def test_19_dangerous_syscalls_denied(self):
        calls = {"io_uring_setup": (425, 1, 0), "bpf": (321, 0, 0, 0), "perf_event_open": (298, 0, 0, -1, -1, 0),
                 "userfaultfd": (323, 0), "keyctl": (250, 0, 0), "add_key": (248, 0, 0, 0, 0, 0), "ptrace": (101, 16, 1),
                 "process_vm_readv": (310, 1, 0, 0, 0, 0, 0), "kexec_load": (246, 0, 0, 0, 0), "init_module": (175, 0, 0, 0),
                 "open_by_handle_at": (304, 0, 0, 0), "unshare": (272, 0x10000000), "setns": (308, 0, 0),
                 "mount": (165, 0, 0, 0, 0, 0), "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0)}
        code = SYSCALL + f"calls = {json.dumps(calls)}\n" + \
            "for name, a in calls.items():\n    r, e = sc(*a)\n    print(name, 'ok' if r >= 0 else os.strerror(e))\n" \
            "    if r == 0 and name == 'clone_newuser': os._exit(0)"
        res = self.py(code)
        for line in res["stdout"].split("\n"):
            name, _, outcome = line.partition(" ")
            self.assertIn(outcome, ("Operation not permitted", "Function not implemented"), line)
        self.assertEqual(len(res["stdout"].split("\n")), len(calls))

    def test_20_socket_families(self):
        code = ("import socket\nfor fam, typ in [(16, socket.SOCK_RAW), (17, socket.SOCK_RAW), (40, socket.SOCK_STREAM),"
                " (socket.AF_INET, socket.SOCK_RAW), (socket.AF_INET, 10), (31, socket.SOCK_STREAM)]:\n"
                "    try:\n        socket.socket(fam, typ); print('OPENED', fam)\n    except OSError as e:\n        print('denied')")
        res = self.py(code)
        self.assertEqual(res["stdout"].split("\n"), ["denied"] * 6)

    def test_21_no_terminal(self):
        res = self.py(SYSCALL + "import fcntl, termios\nprint([os.isatty(i) for i in range(3)])\n"
                      "try:\n    fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('injected')\nexcept OSError as e:\n    print('denied')")
        self.assertEqual(res["stdout"].split("\n"), ["[False, False, False]", "denied"])

    # 22-23. environment and namespaces of the sandbox's own
    def test_22_environment_is_clean(self):
        res = self.sh("env | cut -d= -f1 | sort")
        allowed = {"PATH", "HOME", "TMPDIR", "LANG", "USER", "HOSTNAME", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
                   "NO_COLOR", "DENO_DIR", "DENO_NO_UPDATE_CHECK", "BUN_INSTALL_CACHE_DIR", "PWD", "SHLVL", "_"}
        if (self.config.get("defaults") or {}).get("network") == "filtered":
            allowed |= {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
        self.assertTrue(set(res["stdout"].split("\n")) <= allowed, res["stdout"])

    def test_23_own_hostname_ipc_and_processes(self):
        res = self.sh("hostname; ipcs -q -s -m | grep -c '^0x'; ps -e --no-headers 2>/dev/null | wc -l || ls /proc | grep -cE '^[0-9]+$'")
        lines = res["stdout"].split("\n")
        self.assertEqual(lines[0], "sandbox")
        self.assertEqual(lines[1], "0")
        self.assertLess(int(lines[2]), 8)

    def test_23_abstract_unix_sockets_are_private(self):
        host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        host.bind(b"\0isol8-host-probe")
        host.listen(1)
        try:
            res = self.py("import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(b'\\0isol8-host-probe'); print('reached host')\n"
                          "except OSError as e:\n    print('refused')")
            self.assertEqual(res["stdout"], "refused")
        finally:
            host.close()

    # 26-27. network none
    def test_26_no_network(self):
        port = self.daemon.port
        code = (f"import socket, time\nt = time.time()\nout = []\n"
                f"for host, p in [('127.0.0.1', {port}), ('169.254.169.254', 80), ('8.8.8.8', 53)]:\n"
                "    s = socket.socket(); s.settimeout(3)\n"
                "    try:\n        s.connect((host, p)); out.append('CONNECTED')\n    except OSError:\n        out.append('fail')\n"
                "try:\n    socket.getaddrinfo('example.com', 80); out.append('RESOLVED')\nexcept OSError:\n    out.append('fail')\n"
                "print(out, time.time() - t < 2)")
        res = self.py(code)
        self.assertEqual(res["stdout"], "['fail', 'fail', 'fail', 'fail'] True")

    def test_27_host_sockets_unreachable(self):
        res = self.sh("for s in /run/dbus/system_bus_socket /run/systemd/journal/socket /run/systemd/notify /var/run; do "
                      "[ -e $s ] && echo PRESENT:$s; done; echo end")
        self.assertEqual(res["stdout"], "end")

    # 33. ordinary things keep working under the filter
    def test_33_must_still_work(self):
        code = ("import json, sqlite3, ssl, threading, subprocess\n"
                "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                "print(subprocess.run(['echo', 'sub'], capture_output=True, text=True).stdout.strip())\n"
                "db = sqlite3.connect(':memory:'); print(db.execute('select 6*7').fetchone()[0])\n"
                "print(json.dumps({'ok': True}))")
        res = self.py(code)
        self.assertEqual(res["stdout"].split("\n"), ["sub", "42", '{"ok": true}'])
        node = ("const http = require('http');\n"
                "const srv = http.createServer((q, r) => r.end('pong')).listen(0, '127.0.0.1', () => {\n"
                "  http.get({host: '127.0.0.1', port: srv.address().port}, (r) => { let b = ''; r.on('data', d => b += d);"
                " r.on('end', () => { console.log(b); srv.close(); }); });\n});")
        res = self.run_code(node, "node")
        self.assertEqual(res["stdout"], "pong")


def isol8test_has(runtime):
    import shutil
    return shutil.which(runtime) is not None


class HostileFiltered(Hostile):
    """The same hostile programs with network "filtered" as every run's default: the proxy on
    127.0.0.1:8118 adds no way out (no name resolution, no route, nothing private reachable)."""
    config = {"poolSize": {"clean": 2, "dirty": 2}, "maxConcurrent": 4, "defaults": {"network": "filtered"},
              "security": {"allowedNetworks": ["none", "filtered"]}}

    def test_00_really_filtered(self):
        res = self.sh("echo $HTTP_PROXY; curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/")
        self.assertEqual(res["stdout"], "http://127.0.0.1:8118\n403", res)


class EnvironmentLeak(unittest.TestCase):
    # 22. nothing of the daemon's environment reaches a program
    def test_daemon_environment_does_not_leak(self):
        d = Daemon(key=None, env={"ISOL8_API_KEY": "leak-me-key", "DATABASE_URL": "postgres://user:pw@db/x"}).start()
        try:
            res = d.execute({"code": "env", "runtime": "bash"}, key="leak-me-key")
            self.assertNotIn("leak-me-key", res["stdout"])
            self.assertNotIn("DATABASE_URL", res["stdout"])
            self.assertNotIn("postgres://", res["stdout"])
        finally:
            self.assertEqual(d.stop(), 0)


class CrashRecovery(unittest.TestCase):
    # 32. SIGKILL mid-run, then a restart reclaims what was left
    def test_sigkill_then_restart(self):
        d = Daemon(config={"poolSize": 2}).start()
        pid = d.pid()
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(d.post, "/execute", {"request": {"code": "sleep 100", "runtime": "bash"}})
            time.sleep(1)
            self.assertTrue(isol8test.own_cgroup_dirs(pid))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            with self.assertRaises(Exception):
                f.result()
        # The dead daemon's sandboxes die with it (their init has PDEATHSIG); the next daemon
        # reclaims its cgroups before serving.
        isol8test.restart_after_sigkill(
            self, pid, lambda d2: self.assertEqual(d2.execute({"code": "echo fine", "runtime": "bash"})["stdout"], "fine"))


if __name__ == "__main__":
    isol8test.main()
