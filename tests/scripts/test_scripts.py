#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The README's set-up scripts as a newcomer meets them: every library the build uses comes from a
package scripts/deps.sh installs for running, deps.sh asks apt nothing when all is there, and a
failed configure says why and leaves no broken build directory behind."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def package_list(name):
    text = open(os.path.join(ROOT, "scripts/deps.sh")).read()
    m = re.search(name + r"=\(\n(.*?)\n\)", text, re.S)
    assert m, f"no {name} in deps.sh"
    return set(m.group(1).split())


def fake_bin(tmp, names):
    """A PATH directory whose commands record that they were called, then fail."""
    d = os.path.join(tmp, "bin")
    os.makedirs(d, exist_ok=True)
    for n in names:
        p = os.path.join(d, n)
        with open(p, "w") as f:
            f.write(f"#!/bin/sh\necho {n} \"$@\" >> {tmp}/called\nexit 1\n")
        os.chmod(p, 0o755)
    return d


class Deps(unittest.TestCase):
    def test_every_build_dependency_is_a_run_package(self):
        run = package_list("RUN_PACKAGES")
        names = []
        for mb in ("meson.build", "src/meson.build"):
            names += re.findall(r"dependency\('([^']+)'", open(os.path.join(ROOT, mb)).read())
        self.assertIn("libcurl", names)
        for name in names:
            pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", name], capture_output=True, text=True)
            self.assertEqual(pcdir.returncode, 0, name)
            pc = os.path.join(pcdir.stdout.strip(), name + ".pc")
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(pc)], capture_output=True, text=True)
            self.assertEqual(owner.returncode, 0, (name, owner.stderr))
            pkg = owner.stdout.split(":")[0]
            self.assertIn(pkg, run, f"dependency('{name}') comes from {pkg}, which deps.sh does not install for running")

    def test_test_tools_are_not_run_packages(self):
        run = package_list("RUN_PACKAGES")
        for pkg in ("postgresql", "mariadb-server", "wrk", "hyperfine", "bubblewrap", "python3-websockets"):
            self.assertNotIn(pkg, run)
            self.assertIn(pkg, package_list("TEST_PACKAGES"))

    def test_nothing_asked_when_everything_is_installed(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PATH=fake_bin(tmp, ["apt-get", "npm"]) + ":" + os.environ["PATH"])
            for args in ([], ["--test"]):
                r = subprocess.run([os.path.join(ROOT, "scripts/deps.sh")] + args, capture_output=True, text=True, env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, "")
            self.assertFalse(os.path.exists(os.path.join(tmp, "called")))

    def test_unknown_option(self):
        r = subprocess.run([os.path.join(ROOT, "scripts/deps.sh"), "--tset"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option '--tset'", r.stderr)


class Build(unittest.TestCase):
    def test_failed_configure_is_reported_and_repaired(self):
        with tempfile.TemporaryDirectory() as tmp:
            files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True, check=True).stdout
            for f in files.decode().split("\0"):
                if f and os.path.exists(os.path.join(ROOT, f)):
                    os.makedirs(os.path.join(tmp, os.path.dirname(f)), exist_ok=True)
                    shutil.copy2(os.path.join(ROOT, f), os.path.join(tmp, f))
            build = os.path.join(tmp, "build")
            # No library can be found: meson's own error is shown, and no build/ stays behind.
            env = dict(os.environ, PKG_CONFIG_LIBDIR="/nonexistent", CMAKE_PREFIX_PATH="/nonexistent")
            r = subprocess.run([os.path.join(tmp, "scripts/build.sh")], capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 1)
            self.assertIn('Dependency "libsystemd" not found', r.stderr)
            self.assertFalse(os.path.exists(build))
            # A half-configured directory from an older run is wiped and configured again.
            os.makedirs(os.path.join(build, "meson-private"))
            r = subprocess.run([os.path.join(tmp, "scripts/build.sh")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertTrue(os.path.exists(os.path.join(build, "build.ninja")))
            self.assertTrue(os.access(os.path.join(build, "src/isol8"), os.X_OK))

    def test_builds_without_postgresql_and_mariadb(self):
        # A packager may leave either database out: the rest builds, and nothing links them.
        with tempfile.TemporaryDirectory() as tmp:
            build = os.path.join(tmp, "build")
            r = subprocess.run(["meson", "setup", build, ROOT, "-Dpostgresql=disabled", "-Dmariadb=disabled"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
            r = subprocess.run(["ninja", "-C", build, "src/isol8", "src/isol8ctl"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:])
            libs = subprocess.run(["ldd", os.path.join(build, "src/isol8")], capture_output=True, text=True, check=True).stdout
            self.assertNotIn("libpq", libs)
            self.assertNotIn("libmariadb", libs)
            full = subprocess.run(["ldd", os.path.join(ROOT, "build/src/isol8")], capture_output=True, text=True)
            if full.returncode == 0:
                self.assertIn("libpq", full.stdout)   # the default build has both (auto, installed)


if __name__ == "__main__":
    isol8test.main()
