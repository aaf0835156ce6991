#!/usr/bin/env python3
# The module graph of docs/ARCHITECTURE.md, enforced: an #include that crosses an edge the
# graph does not allow fails here, naming the file, the line and the rule.
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../src"))

# Which folders a folder's files may include (besides its own). "(top)" is src/isol8.c.
ALLOWED = {
    "shared": set(),
    "sandbox": {"shared"},
    "audit": {"shared"},
    "auth": {"shared"},
    "http": {"shared", "auth"},
    "core": {"shared", "sandbox", "audit", "auth"},
    "api": {"shared", "core", "http"},
    "bus": {"shared", "core"},
    "daemon": {"shared", "core", "api", "bus"},
    "client": {"shared", "core", "api", "isol8"},
    "ctl": {"shared", "bus"},
    "(top)": {"shared", "client", "daemon"},   # isol8.c (client verbs), isol8d.c (the server)
}

# Single headers a folder may use from a folder it may not otherwise reach.
EXCEPTIONS = {
    ("client", "sandbox/runtime.h"),   # the CLI names runtimes and their file extensions
}

# Headers private to their module: only these files may include them.
PRIVATE = {
    "http/request-private.h": re.compile(r"^http/"),
    "sandbox/cgroup-backend.h": re.compile(r"^sandbox/cgroup(-v[12])?\.c$"),
    "sandbox/protocol.h": re.compile(r"^sandbox/(sandbox|init|init-main)\.c$"),
}

# Headers that must stay free of the daemon (isol8ctl and the client library use them).
LEAF = {"bus/errors.h": {"shared"}}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources():
    for root, _, files in os.walk(SRC):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                path = os.path.join(root, f)
                yield os.path.relpath(path, SRC), path


def folder(rel):
    return rel.split("/")[0] if "/" in rel else "(top)"


def includes(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != "config.h":
                yield n, m.group(1)


def violations(rel, incs):
    own = folder(rel)
    bad = []
    for n, inc in incs:
        target = inc.split("/")[0] if "/" in inc else None
        if target is None or target == own:
            continue
        if target not in ALLOWED.get(own, set()) and (own, inc) not in EXCEPTIONS:
            bad.append(f"src/{rel}:{n}: {own}/ may not include {inc}")
    return bad


class Layering(unittest.TestCase):
    def test_every_folder_is_known(self):
        for rel, _ in sources():
            self.assertIn(folder(rel), ALLOWED, f"src/{rel}: a new folder needs its place in ARCHITECTURE.md and here")

    def test_includes_follow_the_graph(self):
        bad = []
        for rel, path in sources():
            bad += violations(rel, includes(path))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_private_headers_stay_private(self):
        bad = []
        for rel, path in sources():
            for n, inc in includes(path):
                rule = PRIVATE.get(inc)
                if rule and not rule.match(rel) and rel != inc:
                    bad.append(f"src/{rel}:{n}: {inc} is private to its module")
        self.assertEqual(bad, [], "\n".join(bad))

    def test_leaf_headers_stay_light(self):
        for header, allowed in LEAF.items():
            for n, inc in includes(os.path.join(SRC, header)):
                self.assertIn(inc.split("/")[0], allowed, f"src/{header}:{n} includes {inc}")

    def test_the_check_can_fail(self):
        # The edges the redesign removed are caught if they come back.
        self.assertEqual(len(violations("sandbox/run.c", [(3, "core/manager.h")])), 1)
        self.assertEqual(len(violations("core/run.c", [(5, "api/render.h")])), 1)
        self.assertEqual(len(violations("bus/bus.c", [(7, "api/api.h")])), 1)
        self.assertEqual(len(violations("client/local.c", [(9, "daemon/config.h")])), 1)
        self.assertEqual(len(violations("ctl/isol8ctl.c", [(1, "core/manager.h")])), 1)
        self.assertEqual(violations("api/execute.c", [(2, "core/run.h"), (3, "http/http.h")]), [])


if __name__ == "__main__":
    isol8test.main()
