#!/usr/bin/env python3
"""Runs tests/integration/store_probe (built by `make check`): src/store.c
against a real redis-server that the probe starts and restarts itself
(batches, scripts, reconnects, backoff, timeouts, AUTH/SELECT, replies as
views, deferred commands).  Prints "N passed, M failed" as the probe does;
a probe that was not built, or any failed check, fails this file."""

import os
import shutil
import subprocess
import sys

BUILDDIR = os.environ.get("top_builddir", ".")
PROBE = os.path.join(BUILDDIR, "tests", "integration", "store_probe")


def main():
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            print("FAIL: %s not found (install the Debian package redis-server)" % tool)
            print("0 passed, 1 failed")
            return 1
    if not os.access(PROBE, os.X_OK):
        print("FAIL: %s not built (make check builds it)" % PROBE)
        print("0 passed, 1 failed")
        return 1
    try:
        p = subprocess.run([PROBE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
    except subprocess.TimeoutExpired:
        print("FAIL: store_probe did not finish in 120 s")
        print("0 passed, 1 failed")
        return 1
    out = p.stdout.decode("utf-8", "replace")
    sys.stdout.write(out)
    if p.returncode != 0 or not out.rstrip().endswith(" 0 failed"):
        print("FAIL: store_probe exited %d" % p.returncode)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
