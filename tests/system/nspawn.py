# SPDX-License-Identifier: MIT
"""A minimal Debian 12 booted with systemd as PID 1 in systemd-nspawn, with isol8 installed by
`meson install` as a package would: the tests talk to it only through the commands a user types.

The root file system is made once with mmdebstrap from the machine's Debian mirror and cached as
a tarball in /var/cache/isol8-tests, keyed by its package list; each test class gets a fresh copy.
One oneshot unit is added that is a property of this test host, not of the product: nspawn mounts
the host's cgroup v1 controllers read-only, and it remounts them writable."""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

CACHE = "/var/cache/isol8-tests"
PACKAGES = ["systemd", "systemd-sysv", "dbus", "curl", "python3", "passwd", "procps", "ca-certificates",
            "libmicrohttpd12", "libjson-c5", "libseccomp2", "libssl3", "libsqlite3-0", "libpq5", "libmariadb3",
            "libcurl4", "python3-pip"]

CGROUP_RW_UNIT = """[Unit]
Description=Test host property: make the cgroup v1 controllers that nspawn mounts read-only writable
DefaultDependencies=no
Before=sysinit.target
ConditionPathIsDirectory=/sys/fs/cgroup/memory

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in memory pids cpu cpuacct freezer; do mount -o remount,bind,rw /sys/fs/cgroup/$c || true; done'
"""


def mirror():
    """The Debian mirror this machine's apt uses."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(r"^deb\s+(\S+/debian)\s+bookworm", text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def rootfs_tarball():
    key = hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:16]
    tar = os.path.join(CACHE, f"rootfs-bookworm-{key}.tar")
    if not os.path.exists(tar):
        os.makedirs(CACHE, exist_ok=True)
        tmp = tar[:-len(".tar")] + ".part.tar"   # mmdebstrap picks the format by the name
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(PACKAGES), "bookworm", tmp,
                        mirror()], check=True, stdout=subprocess.DEVNULL)
        os.rename(tmp, tar)
    return tar


class Machine:
    def __init__(self, build_dir):
        self.build_dir = build_dir
        self.root = None
        self.proc = None
        self.leader = None

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.stop()   # a container that failed to come up must not outlive the test
            raise

    def _start(self):
        tar = rootfs_tarball()
        self.root = tempfile.mkdtemp(prefix="isol8-system-", dir="/var/tmp")
        subprocess.run(["tar", "-C", self.root, "-xf", tar], check=True)
        subprocess.run(["meson", "install", "-C", self.build_dir, "--destdir", self.root, "--no-rebuild", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL)
        unit = os.path.join(self.root, "etc/systemd/system/cgroup-v1-rw.service")
        with open(unit, "w") as f:
            f.write(CGROUP_RW_UNIT)
        wants = os.path.join(self.root, "etc/systemd/system/sysinit.target.wants")
        os.makedirs(wants, exist_ok=True)
        os.symlink("/etc/systemd/system/cgroup-v1-rw.service", os.path.join(wants, "cgroup-v1-rw.service"))
        self.proc = subprocess.Popen(["systemd-nspawn", "-q", "-D", self.root, "-b", "--register=no", "--keep-unit",
                                      "--private-network"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and not self.leader:
            for p in os.listdir("/proc"):
                if p.isdigit():
                    try:
                        with open(f"/proc/{p}/stat") as f:
                            stat = f.read()
                        # the container's PID 1, once it is systemd (not nspawn's child before exec)
                        if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid and "(systemd)" in stat:
                            self.leader = int(p)
                    except (OSError, ValueError, IndexError):
                        pass
            time.sleep(0.1)
        assert self.leader, "the container did not start"
        # systemctl answers only once the manager's private bus is up: ask again until it does.
        while True:
            r = self.run("systemctl is-system-running --wait", timeout=90)
            if r.stdout.strip() or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.stdout.strip() in ("running", "degraded"), (r.stdout, r.stderr, self.run("systemctl --failed").stdout)
        # What a package's maintainer scripts do after unpacking.
        self.run("ldconfig && systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload && "
                 "systemctl reload dbus", check=True)
        return self

    def run(self, command, check=False, timeout=60, user=None):
        argv = ["nsenter", "-t", str(self.leader), "-a", "/bin/sh", "-c", command]
        if user:
            argv = ["nsenter", "-t", str(self.leader), "-a", "runuser", "-u", user, "--", "/bin/sh", "-c", command]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"{command!r} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def stop(self):
        if self.proc:
            if self.proc.poll() is None and self.leader:
                subprocess.run(["nsenter", "-t", str(self.leader), "-a", "systemctl", "poweroff"],
                               capture_output=True, timeout=30)
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
