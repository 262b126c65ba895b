#!/usr/bin/env python3
"""Client disconnect in the middle of a 100 MB response (lighttpd, one
apigw process, streaming): the client reads 1 MB and resets the
connection; the backend counts the body bytes it wrote for that request
(/_bytes?key=K).  The gateway must stop pulling within a few MB (socket
buffers of lighttpd, apigw and the kernel in between), and the same
worker must serve the next request."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
from faults import figure, h  # noqa: E402
from harness import check, eq, expect_status, test  # noqa: E402

MB = 1 << 20
PULLED_BOUND = 16 * MB


class Ctx:
    pass


def setup(td):
    c = Ctx()
    c.redis = h.start_redis(td)
    c.b = h.start_backend(td)
    cfg = h.base_config(c.redis, [{"prefix": "/b", "backend": c.b.url, "timeout_ms": 60000}])
    c.lt = h.Lighttpd(td, config=h.write_gateway_config(td, cfg), max_procs=1)
    return c


def sent(c, key):
    return h.request(c.b.port, "GET", "/_bytes?key=%s" % key).json()["bytes"]


@test
def disconnect_mid_stream(c):
    pids = c.lt.worker_pids()
    for i in range(2):
        key = "dc%d" % i
        r, n, _ = h.stream_get(c.lt.port, "/b/big?mb=100&key=%s" % key, stop_after=MB)
        expect_status(r, 200, "100 MB stream")
        # wait until the backend stops writing (its counter is flat)
        last, stable = -1, 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and stable < 5:
            cur = sent(c, key)
            stable = stable + 1 if cur == last else 0
            last = cur
            time.sleep(0.1)
        figure("disconnect %d: client read %.1f MB, backend wrote %.1f MB of 100 before stopping",
               i + 1, n / MB, last / MB)
        check(last < 100 * MB, "the backend sent the whole body")
        check(last <= PULLED_BOUND, "backend wrote %d bytes after a disconnect at 1 MB" % last)
        r = h.request(c.lt.port, "GET", "/b/echo")
        expect_status(r, 200, "next request")
    eq(c.lt.worker_pids(), pids, "worker pids")
    r, n, digest = h.stream_get(c.lt.port, "/b/big?mb=10")
    eq((n, digest), h.big_digest(10), "a whole 10 MB stream afterwards")


if __name__ == "__main__":
    h.main(setup)
