#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A run on a runtime image against a plain run (issue 16's target: within 1 ms of its p50).

Builds an image of a small package from a local PyPI index (as tests/integration/test_images.py
does, with a private dbus-daemon and isol8ctl), then alternates rounds of sequential python
`pass` runs: plain, and on the image (chosen by installPackages, which it holds). Prints a
Markdown table."""

import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../lib"))
from bench import pct, print_table, sequential  # noqa: E402
import test_images  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_SEQ", "200"))


def main():
    T = test_images.Images
    T.setUpClass()
    try:
        r = subprocess.run([test_images.ISOL8CTL, f"--address={T.address}", "images", "build", "bench", "--runtime", "python",
                            "--packages", "isol8probe"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        plain, image = [], []
        for _ in range(ROUNDS):
            plain.append(pct(sequential(T.daemon.port, {"code": "pass", "runtime": "python"}, N), 50))
            image.append(pct(sequential(T.daemon.port, {"code": "pass", "runtime": "python", "installPackages": ["isol8probe"]}, N), 50))
        p, i = statistics.median(plain), statistics.median(image)
        rows = [(f"python `pass`, sequential, median of {ROUNDS} rounds' p50 ({N} runs each): plain / on an image",
                 f"{p:.2f} / {i:.2f} ms", f"{i - p:+.2f} ms"),
                ("each round's p50: plain; on an image", "; ".join(f"{x:.2f}" for x in plain), "; ".join(f"{x:.2f}" for x in image))]
    finally:
        T.tearDownClass()
    print(f"binary: {os.environ.get('ISOL8_BIN', 'build/src/isol8')}")
    print_table(rows)


if __name__ == "__main__":
    main()
