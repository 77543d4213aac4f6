#!/usr/bin/python3
"""test_runner: when the suite fails, tests/run.sh ends by naming each
failing test with its failed checks and the tail of its log, so that CI's
output alone says what failed and why. Runs tests/run.sh on a fake build
directory: one passing test, one failing test with a long log, one that
crashes without a failed check.
"""

import os
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

FAIL = """#!/bin/sh
echo "ok 1 - fine"
echo "not ok 2 - deliberately failing check"
echo "#   expected: 1"
i=1
while [ $i -le 60 ]; do echo "log line $i"; i=$((i + 1)); done
echo "the last word of the log"
exit 1
"""
CRASH = """#!/bin/sh
echo "ok 1 - fine so far"
echo "Segmentation fault (core dumped): the crash's own words" >&2
exit 139
"""
PASS = """#!/bin/sh
echo "ok 1 - passes"
"""


def body(t):
    tmp = tempfile.mkdtemp(prefix="followupd-runner.")
    try:
        build = os.path.join(tmp, "build")
        os.makedirs(os.path.join(build, "tests"))
        e2e = os.path.join(tmp, "e2e")
        os.makedirs(e2e)
        for name, text in (("test_fail", FAIL), ("test_crash", CRASH),
                           ("test_pass", PASS)):
            path = os.path.join(build, "tests", name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        p = subprocess.run(["sh", os.path.join(fx.ROOT, "tests", "run.sh")],
                           cwd=fx.ROOT, capture_output=True, timeout=120,
                           env=dict(os.environ, BUILD=build, E2E=e2e,
                                    SKIP_VALGRIND="1"))
        out = p.stdout.decode("utf-8", "replace")
        t.ok(p.returncode != 0, "a failing suite exits non-zero", out)
        t.ok(out.rstrip().endswith("3 passed, 2 failed"),
             "the totals come last", out)
        summary = out[out.find("==== failing tests:"):]
        t.ok("==== failing tests:" in out and "test_fail" in summary and
             "test_crash" in summary and "test_pass" not in summary,
             "the end names each failing test and only those", out)
        t.ok("deliberately failing check" in summary and
             "expected: 1" in summary, "with its failed check", summary)
        t.ok("log line 60" in summary and "the last word of the log" in
             summary, "and the tail of its log", summary)
        t.ok("the crash's own words" in summary,
             "a crash without a failed check shows its log's tail too",
             summary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    fx.main(body)
