# SPDX-License-Identifier: ISC
"""The upstream keep-alive pool follows the load (upstream_keepalive =
auto, the default): a burst of concurrent requests wider than any fixed
cap leaves its connections for the next burst, so a steady load opens no
connection per request; connections the load no longer uses close after
upstream_keepalive_timeout; a number still caps the pool.  Counted by the
real upstream (connections accepted, connections open)."""
import os
import socket
import subprocess
import threading
import time

import requests

from conftest import BIN, Gatehouse
from test_upstreams import Named

WIDTH = 100  # wider than the old fixed cap of 64 idle connections


def burst(url, n):
    """n requests at once, each held by the upstream for a moment so all
    n are in flight together; every one must succeed."""
    errs = []
    barrier = threading.Barrier(n)

    def one():
        try:
            barrier.wait(10)
            r = requests.get(url + "/slow?ms=400", timeout=10,
                             headers={"Connection": "close"})
            if r.status_code != 200:
                errs.append(r.status_code)
        except Exception as e:  # noqa: BLE001 (reported below)
            errs.append(repr(e))

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errs, errs[:5]


def wait_for(pred, what, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(what)


def start(tmp, up, extra):
    return Gatehouse(tmp, ["upstream = " + up.url, "workers = 1",
                           "route /* allow anonymous"] + extra)


def test_auto_pool_keeps_a_wide_burst_and_trims_after_the_timeout(tmp):
    up = Named(tmp, "main")
    try:
        # Long enough that a loaded machine starting the next burst's
        # threads never lets a connection sit idle that long between
        # bursts.
        g = start(tmp, up, ["upstream_keepalive_timeout = 8s"])
        burst(g.url, WIDTH)
        first = up.stats()["connections"] - 1  # minus the /stats call
        assert first == WIDTH, first
        # Three more bursts of the same width reuse those connections.
        for _ in range(3):
            burst(g.url, WIDTH)
        st = up.stats()
        assert st["connections"] - 2 == WIDTH, st
        # Then idle: every pooled connection closes after the timeout
        # (the upstream sees them go), none before it.
        assert st["open"] >= WIDTH, st
        wait_for(lambda: up.stats()["open"] <= 1,
                 "the idle connections were never closed", timeout=30)
        g.stop()
    finally:
        up.stop()


def test_fixed_cap_still_caps(tmp):
    up = Named(tmp, "main")
    try:
        g = start(tmp, up, ["upstream_keepalive = 8"])
        burst(g.url, 40)
        burst(g.url, 40)
        # Only 8 stayed from the first burst: the second opened 32 more.
        assert up.stats()["connections"] - 1 == 40 + 32
        g.stop()
    finally:
        up.stop()


def test_max_connections_queues_requests_over_the_limit(tmp):
    up = Named(tmp, "main")
    try:
        g = start(tmp, up, ["upstream_max_connections = 2"])
        # 12 requests of 400 ms at once through 2 connections: all are
        # served, in line, and the upstream never holds more than 2.
        burst(g.url, 12)
        st = up.stats()
        assert st["peak_open"] <= 2 + 1, st  # + the /stats call itself
        assert st["connections"] - 1 == 2, st
        g.stop()
    finally:
        up.stop()


def test_queue_timeout_answers_503_and_a_gone_client_leaves_the_line(tmp):
    up = Named(tmp, "main")
    try:
        g = start(tmp, up, ["upstream_max_connections = 1",
                            "upstream_queue_timeout = 1s"])
        held = threading.Thread(target=lambda: requests.get(
            g.url + "/slow?ms=4000", timeout=10))
        held.start()
        wait_for(lambda: up.stats()["open"] >= 2, "the slow request never "
                 "reached the upstream")
        r = requests.get(g.url + "/x", timeout=10,
                         headers={"Accept": "application/json"})
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers.get("Retry-After") == "5"
        assert r.json()["error"] == "upstream_busy"
        assert g.loggrep(r"upstream_error .*upstream_queue_timeout")
        # A client that gives up while in line leaves it: nothing is
        # sent for it, and the line moves on for the next one.
        before = up.stats()["requests"]  # counts this /stats call too
        s = socket.create_connection(("127.0.0.1", g.port))
        s.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        s.close()
        held.join(15)
        r = requests.get(g.url + "/after", timeout=10)
        assert r.status_code == 200
        assert r.json()["path"] == "/after"
        # /after and this /stats: nothing for the client that left.
        assert up.stats()["requests"] == before + 2
        g.stop()
    finally:
        up.stop()


def test_keepalive_value_is_checked(tmp):
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("listen = 127.0.0.1:1\nupstream = http://127.0.0.1:2\n"
                "upstream_keepalive = some\n")
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0
    assert "bad.conf:3: upstream_keepalive: expected auto or a " \
        "non-negative integer" in p.stderr, p.stderr
