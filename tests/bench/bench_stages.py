#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where one run's time goes, stage by stage: one client, sequential runs of `cmd: true` and
python `pass` against the default configuration, and bare spawns of the same programs, traced
with perf (scheduler and syscall tracepoints, the whole machine) and cut at the syscalls that
mark each hop: the request read, the RUN sent to the init, the fork, execve, exit_group, the
zombie, EXITED, the answer, the client's read.

Each stage is the median over BENCH_STAGE_RUNS runs (200); the tracing itself adds a few
microseconds per event. Needs root and perf (`scripts/deps.sh --test` installs linux-perf).
ISOL8_BIN picks the binary (default build/src/isol8); prints a Markdown table.
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench import SANDBOX_ENV, LeanClient, spawn_once  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from isol8test import Daemon  # noqa: E402

RUNS = int(os.environ.get("BENCH_STAGE_RUNS", "200"))
# x86-64 syscall numbers: sendto, recvfrom, sendmsg, recvmsg, writev, clone, clone3, execve, wait4, exit_group
SENDTO, RECVFROM, SENDMSG, RECVMSG, WRITEV, CLONE, CLONE3, EXECVE, WAIT4, EXIT_GROUP = \
    44, 45, 46, 47, 20, 56, 435, 59, 61, 231
EVENTS = [
    "-e", "sched:sched_switch", "-e", "sched:sched_process_fork", "-e", "sched:sched_process_exec",
    "-e", "raw_syscalls:sys_enter", "--filter",
    " || ".join(f"id == {n}" for n in (SENDTO, RECVFROM, SENDMSG, RECVMSG, WRITEV, CLONE, CLONE3, EXECVE, EXIT_GROUP)),
    "-e", "raw_syscalls:sys_exit", "--filter", f"id == {RECVFROM} || id == {WAIT4}",
]
LINE = re.compile(r"\s*(.*?)\s+(\d+)/(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)")

ISOL8_STAGES = [
    ("req", "recv", "request sent -> the daemon reads it (its wake-up)"),
    ("recv", "run", "-> RUN sent to the init (HTTP, key, queue, cgroup writes, program file, pipes)"),
    ("run", "fork", "-> the init forks the program (the init's wake-up)"),
    ("fork", "execve", "-> execve (session, descriptors, limits, credentials, no_new_privs, seccomp load)"),
    ("execve", "exec", "-> the new program runs (the kernel's exec, a move to an idle CPU)"),
    ("exec", "exit", "the program itself (its first exec -> exit_group)"),
    ("exit", "zombie", "-> zombie (the kernel tears the process down)"),
    ("zombie", "exited", "-> EXITED sent (the init's wake-up, reaping)"),
    ("exited", "dwake", "-> the daemon reads it (its wake-up)"),
    ("dwake", "answer", "-> answer sent (exit status, cgroup counters, CPU weight, audit record, JSON, HTTP)"),
    ("answer", "got", "-> the client has it"),
]
BARE_STAGES = {("fork", "execve"): ("spawn", "execve"), ("execve", "exec"): ("execve", "exec"),
               ("exec", "exit"): ("exec", "exit"), ("exit", "zombie"): ("exit", "zombie"),
               ("zombie", "exited"): ("zombie", "waited")}


def events(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,cpu,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            yield m.group(1), int(m.group(2)), float(m.group(4)) * 1000, m.group(5), m.group(6)


def nr(rest):
    m = re.match(r"NR (\d+) \((\w+)", rest)
    return (int(m.group(1)), int(m.group(2), 16)) if m else (None, None)


def program_mark(cur, pid, t, name, rest, n):
    """The program's own marks (execve, its first exec, exit_group, zombie): whether it was one."""
    child = cur.get("child")
    if pid == child and n == EXECVE and "execve" not in cur:
        cur["execve"] = t
    elif pid == child and name == "sched:sched_process_exec" and "exec" not in cur:
        cur["exec"] = t
    elif pid == child and n == EXIT_GROUP:
        cur["exit"] = t
    elif name == "sched:sched_switch" and f"prev_pid={child} " in rest and "prev_state=Z" in rest:
        cur["zombie"] = t
    else:
        return False
    return True


def isol8_runs(path, client, daemon):
    """Per run, the time (ms) of each mark (runs missing one are dropped), and the count missing."""
    runs, cur = [], None
    for comm, pid, t, name, rest in events(path):
        enter, leave = name == "raw_syscalls:sys_enter", name == "raw_syscalls:sys_exit"
        n, arg0 = nr(rest) if enter else (None, None)
        if enter and pid == client and n == SENDTO:
            cur = {"req": t}
            runs.append(cur)
        elif cur is None:
            continue
        elif enter and pid == daemon and n == RECVFROM and "recv" not in cur:
            cur["recv"], cur["fd"] = t, arg0
        elif enter and pid == daemon and n == SENDMSG and "recv" in cur and "run" not in cur:
            cur["run"] = t
        elif name == "sched:sched_process_fork" and "run" in cur and "fork" not in cur and comm.startswith("isol8"):
            cur["fork"], cur["init"] = t, pid
            cur["child"] = int(re.search(r"child_pid=(\d+)", rest).group(1))
        elif program_mark(cur, pid, t, name, rest, n):
            pass
        elif enter and pid == cur.get("init") and n == SENDTO and "zombie" in cur and "exited" not in cur:
            cur["exited"] = t
        elif enter and pid == daemon and n == RECVMSG and "exited" in cur and "dwake" not in cur:
            cur["dwake"] = t
        elif enter and pid == daemon and n in (SENDTO, SENDMSG, WRITEV) and arg0 == cur.get("fd") \
                and "dwake" in cur and "answer" not in cur:
            cur["answer"] = t
        elif leave and pid == client and rest.startswith(f"NR {RECVFROM} ") and "answer" in cur and "got" not in cur:
            cur["got"] = t
    return complete(runs, [a for a, _, _ in ISOL8_STAGES] + ["got"])


def complete(runs, marks):
    """The runs with every mark, and how many lacked each (the first missing one), for the error."""
    missing = {}
    for r in runs:
        first = first_missing(r, marks)
        if first:
            missing[first] = missing.get(first, 0) + 1
    return [r for r in runs if first_missing(r, marks) is None], missing


def first_missing(run, marks):
    return next((k for k in marks if k not in run), None)


def bare_runs(path, client):
    runs, cur = [], None
    for comm, pid, t, name, rest in events(path):
        enter, leave = name == "raw_syscalls:sys_enter", name == "raw_syscalls:sys_exit"
        n, _ = nr(rest) if enter else (None, None)
        if enter and pid == client and n in (CLONE, CLONE3):
            cur = {"spawn": t}
            runs.append(cur)
        elif cur is None:
            continue
        elif name == "sched:sched_process_fork" and pid == client and "child" not in cur:
            cur["child"] = int(re.search(r"child_pid=(\d+)", rest).group(1))
        elif program_mark(cur, pid, t, name, rest, n):
            pass
        elif leave and pid == client and rest.startswith(f"NR {WAIT4} ") and "zombie" in cur and "waited" not in cur:
            cur["waited"] = t
    return complete(runs, ["spawn", "execve", "exec", "exit", "zombie", "waited"])


def traced(work, path):
    """Runs work() under a system-wide perf record writing to path."""
    perf = subprocess.Popen(["perf", "record", "-q", "-a", "-o", path] + EVENTS + ["--", "sleep", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2)   # perf sets its events up before it starts the command; runs before that are not seen
    try:
        work()
    finally:
        perf.send_signal(signal.SIGINT)
        err = perf.communicate(timeout=60)[1]
    # perf ends its workload (sleep) on SIGINT and exits with the workload's status: judge the file.
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise SystemExit(f"perf record failed ({perf.returncode}): {err.decode()[-500:]}")


def med(runs, a, b):
    return statistics.median(r[b] - r[a] for r in runs) if runs else float("nan")


def main():
    if os.geteuid() != 0 or not shutil.which("perf"):
        raise SystemExit("bench_stages: needs root and perf (scripts/deps.sh --test installs linux-perf)")
    d = Daemon().start()
    tmp = tempfile.TemporaryDirectory(prefix="isol8-stages-")
    try:
        main_py = os.path.join(tmp.name, "main.py")
        with open(main_py, "w") as f:
            f.write("pass\n")
        cols = []
        # The middle column is the control: a program that takes as long as python `pass` here
        # without using a CPU, to tell what a long run costs after it from what python does.
        for label, request, bare_argv in (("`cmd: true`", {"cmd": "true"}, ["/usr/bin/bash", "-c", "true"]),
                                          ("`cmd: sleep 0.015`", {"cmd": "sleep 0.015"},
                                           ["/usr/bin/bash", "-c", "sleep 0.015"]),
                                          ("python `pass`", {"code": "pass", "runtime": "python"},
                                           ["/usr/bin/python3", main_py])):
            client = LeanClient(d.port, request)
            for _ in range(20):
                client.execute_once()
            path = os.path.join(tmp.name, "isol8.data")
            traced(lambda: [client.execute_once() for _ in range(RUNS)], path)
            mine, lost = isol8_runs(path, os.getpid(), d.pid())
            path = os.path.join(tmp.name, "bare.data")
            traced(lambda: [spawn_once(bare_argv, SANDBOX_ENV) for _ in range(RUNS)], path)
            theirs, _ = bare_runs(path, os.getpid())
            client.close()
            if len(mine) < RUNS // 2 or len(theirs) < RUNS // 2:
                raise SystemExit(f"bench_stages: only {len(mine)} isol8 and {len(theirs)} bare runs of {RUNS} "
                                 f"could be followed in the trace (isol8 runs missing a mark, by the first missing: {lost})")
            cols.append((label, mine, theirs))
        print(f"| stage (median of {RUNS} runs each, ms, under tracing) | "
              + " | ".join(f"isol8 {label} | bare" for label, _, _ in cols) + " |")
        print("|---|" + "---|---|" * len(cols))
        for a, b, what in ISOL8_STAGES:
            cells = []
            for _, mine, theirs in cols:
                cells.append(f"{med(mine, a, b):.3f}")
                bare = BARE_STAGES.get((a, b))
                cells.append(f"{med(theirs, *bare):.3f}" if bare else "")
            print(f"| {what} | " + " | ".join(cells) + " |")
        print("| **request sent -> answer read / spawn -> waitpid returns** | "
              + " | ".join(f"**{med(mine, 'req', 'got'):.3f}** | **{med(theirs, 'spawn', 'waited'):.3f}**"
                           for _, mine, theirs in cols) + " |")
        print("| of which the program (exec -> exit_group) | "
              + " | ".join(f"{med(mine, 'exec', 'exit'):.3f} | {med(theirs, 'exec', 'exit'):.3f}"
                           for _, mine, theirs in cols) + " |")
        print("| all the rest (the median of total minus program) | "
              + " | ".join(f"{statistics.median((r['got'] - r['req']) - (r['exit'] - r['exec']) for r in mine):.3f} | "
                           f"{statistics.median((r['waited'] - r['spawn']) - (r['exit'] - r['exec']) for r in theirs):.3f}"
                           for _, mine, theirs in cols) + " |")
    finally:
        d.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
