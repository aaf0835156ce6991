#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""runtime agent: pi (npm's @mariozechner/pi-coding-agent) from a runtime image, built at
start-up from a local npm registry on loopback that serves pi with its dependencies bundled,
answers a prompt through a fake OpenAI-compatible endpoint on loopback; the tool call the model
asks for runs in the sandbox as any run does (its user, its seccomp filter), the API key is a
masked secret, and pi is told it runs in a sandbox."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
import isol8test  # noqa: E402
import netservers  # noqa: E402
from isol8test import Daemon  # noqa: E402

PACKAGE = "@mariozechner/pi-coding-agent"
# Where scripts/deps.sh --test puts pi (npm install --prefix), or ISOL8_TEST_PI.
PI_PREFIX = os.environ.get("ISOL8_TEST_PI", "/var/cache/isol8-tests/pi")
HOSTS = "127.0.0.1 localhost\n127.0.0.2 npm.test chat.test\n"
TOOL = "echo tool-ran-as $(id -u) on $(hostname) seccomp=$(awk '/^Seccomp:/ {print $2}' /proc/self/status) key=$FAKE_KEY"


def bundled_tarball(prefix):
    """pi with its whole node_modules inside (bundleDependencies): the one tarball the local
    registry serves, so that nothing else is fetched. Made once next to the install."""
    src = os.path.join(prefix, "node_modules", PACKAGE)
    with open(os.path.join(src, "package.json")) as f:
        manifest = json.load(f)
    out = os.path.join(prefix, f"bundle-{manifest['version']}.tgz")
    if not os.path.exists(out):
        tmp = tempfile.mkdtemp(prefix="isol8-pi-")
        try:
            pkg = os.path.join(tmp, "package")
            shutil.copytree(src, pkg, symlinks=True)
            manifest["bundleDependencies"] = sorted(manifest.get("dependencies", {}))
            with open(os.path.join(pkg, "package.json"), "w") as f:
                json.dump(manifest, f)
            os.symlink(os.path.join(prefix, "node_modules"), os.path.join(pkg, "node_modules"))
            subprocess.run(["tar", "-czhf", out + ".tmp", "-C", tmp, "package"], check=True)
            os.rename(out + ".tmp", out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    with open(out, "rb") as f:
        return manifest["version"], f.read()


class Agent(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(PI_PREFIX, "node_modules", PACKAGE, "dist", "cli.js")):
            raise unittest.SkipTest(f"pi is not installed in {PI_PREFIX} (scripts/deps.sh --test puts it there)")
        version, tarball = bundled_tarball(PI_PREFIX)
        cls.tmp = tempfile.mkdtemp(prefix="isol8-agent-")
        cls.npm = netservers.HttpServer("127.0.0.2")
        base = f"http://npm.test:{cls.npm.port}/"
        routes = netservers.npm_routes(base, PACKAGE, version, tarball)
        routes["/" + PACKAGE.replace("/", "%2f")] = routes["/" + PACKAGE]
        cls.npm.routes.update(routes)
        cls.chat = netservers.FakeChatServer("127.0.0.2", arguments={"command": TOOL})
        config = {
            "security": {"allowedNetworks": ["none", "filtered"]},
            "network": {"allowedAddresses": ["127.0.0.2/32"], "allowedPorts": [cls.npm.port, cls.chat.port]},
            "packages": {"npmRegistry": base, "installTimeoutMs": 240000},
            "images": {"directory": os.path.join(cls.tmp, "images")},
            # upstream's dependencies key builds node-custom at start; the agent uses it
            "dependencies": {"node": [PACKAGE]},
            "agent": {"image": "node-custom"},
            "limits": {"maxTimeoutMs": 120000},
        }
        cls.daemon = Daemon(config=config, files={"/etc/hosts": HOSTS}).start()
        meta = os.path.join(cls.tmp, "images", "node-custom", "image.json")
        for _ in range(3000):
            if os.path.exists(meta):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the agent image was not built: " + cls.daemon.stderr_text()[-2000:])

    @classmethod
    def tearDownClass(cls):
        pid = cls.daemon.pid()
        rc = cls.daemon.stop()
        cls.npm.close()
        cls.chat.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, cls.daemon.stderr_text()[-2000:]
        isol8test.assert_nothing_left(pid)

    def models_json(self):
        return json.dumps({"providers": {"fake": {
            "baseUrl": f"http://chat.test:{self.chat.port}/v1", "api": "openai-completions", "apiKey": "FAKE_KEY",
            "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
            "models": [{"id": "m1"}]}}})

    def test_a_prompt_is_answered_and_the_tool_runs_in_the_sandbox(self):
        n = len(self.chat.requests)
        res = self.daemon.execute({"runtime": "agent", "code": "Run the probe and tell me what it printed.",
                                   "agentFlags": "--provider fake --model m1", "timeoutMs": 120000,
                                   "files": {".pi/agent/models.json": self.models_json()}},
                                  {"secrets": {"FAKE_KEY": "sekrit-value-123"}, "timeoutMs": 120000})
        self.assertEqual(res["exitCode"], 0, res)
        # The tool's output came back to the model and into the answer: run as the sandbox user,
        # in the sandbox (its hostname), under the seccomp filter (mode 2), the key masked.
        self.assertIn("ANSWER: tool-ran-as 1000 on sandbox seccomp=2 key=***", res["stdout"], res)
        self.assertNotIn("sekrit-value-123", json.dumps(res))
        calls = self.chat.requests[n:]
        self.assertEqual(len(calls), 2, calls)
        path, headers, body = calls[0]
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual({k.lower(): v for k, v in headers.items()}["authorization"], "Bearer sekrit-value-123")
        self.assertEqual(body["model"], "m1")
        system = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] in ("system", "developer"))
        self.assertIn("isol8 sandbox", system)
        self.assertIn("Run the probe", json.dumps(body["messages"]))

    def test_refusals(self):
        r = self.daemon.post("/execute", {"request": {"runtime": "agent", "code": "hi"}, "options": {"image": "nope"}})
        self.assertEqual((r.status, r.json()["error"]), (400, 'options.image: no image named "nope"'))
        r = self.daemon.post("/execute", {"request": {"runtime": "agent", "cmd": "true"}})
        self.assertEqual((r.status, r.json()["error"]), (400, "runtime agent takes its prompt in request.code"))
        for flags in ("--x", ["--x", "--y"]):
            r = self.daemon.post("/execute", {"request": {"runtime": "python", "code": "1", "agentFlags": flags}})
            self.assertEqual((r.status, r.json()["error"]), (400, "request.agentFlags is only for runtime agent"))
        r = self.daemon.post("/execute", {"request": {"runtime": "agent", "code": "hi", "agentFlags": ["-p"] * 65}})
        self.assertEqual((r.status, r.json()["error"]), (400, "request.agentFlags: more than 64 flags"))
        r = self.daemon.post("/execute", {"request": {"runtime": "agent", "code": "hi", "agentFlags": ["--a", 7]}})
        self.assertEqual((r.status, r.json()["error"]), (400, "request.agentFlags[1] is not a string"))
        r = self.daemon.post("/execute", {"request": {"runtime": "agent", "code": "x" * (100 * 1024 + 1)}})
        self.assertEqual(r.status, 400)
        self.assertIn("longer than", r.json()["error"])


if __name__ == "__main__":
    isol8test.main()
