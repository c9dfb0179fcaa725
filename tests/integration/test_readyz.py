# SPDX-License-Identifier: ISC
"""/.auth/readyz follows the provider and the session store, and comes back
by itself: the tests' own OpenID Provider answering 500 for discovery or
the JWKS, then stopped by its PID and started again on the same port; a
real redis-server stopped by its PID and started again.  /.auth/healthz
(liveness) stays 200 throughout.

"Usable" for the provider means: every worker holds the metadata and the
keys, and the process's last fetch of them worked.  A failed refetch
counts although the last good copy stays in use (sign-in would need the
provider now); the retries, with backoff, keep asking, so readyz turns
back once one of them works.  discovery_refresh = 1s here makes the
timed refetch come at once; nothing below waits for a fixed time, every
wait polls for the state it wants."""
import time

import pytest
import requests

from conftest import Gatehouse, free_port
from op_client import OP
from redis_server import RedisServer
from signin import gateway_lines, sign_in, start_gateway

WORKERS = 4
# Refetch every second, so a provider failure shows without waiting.
REFRESH = ["discovery_refresh = 1s", "workers = %d" % WORKERS]


@pytest.fixture
def op():
    holder = {"op": OP()}
    yield holder
    holder["op"].stop()


def probe(g, path="/.auth/readyz"):
    """One probe on a new connection, as a kubelet makes it (and so spread
    over the workers by SO_REUSEPORT)."""
    return requests.get(g.url + path, headers={"Connection": "close"},
                        timeout=5)


def check_shape(r):
    """What every readyz answer holds, ready or not; its JSON."""
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    doc = r.json()
    if r.status_code == 200:
        assert doc == {"status": "ready", "provider": "ok",
                       "session_store": "ok"}, doc
    else:
        assert r.status_code == 503, r.status_code
        assert set(doc) == {"status", "provider", "session_store",
                            "reason"}, doc
        assert doc["status"] == "unavailable"
        # Words for a person, never an address to poke at.
        assert "http://" not in doc["reason"] and "127.0.0.1" not in \
            doc["reason"], doc
    return doc


def wait_readyz(g, status, timeout=30.0):
    """Poll readyz until it answers `status`; every answer on the way is
    well-formed and healthz says 200 beside it.  Returns the JSON."""
    end = time.monotonic() + timeout
    while True:
        r = probe(g)
        doc = check_shape(r)
        h = probe(g, "/.auth/healthz")
        assert h.status_code == 200 and h.json() == {"status": "ok"}
        assert h.headers["Cache-Control"] == "no-store"
        if r.status_code == status:
            return doc
        assert time.monotonic() < end, (status, doc, g.log()[-3000:])
        time.sleep(0.1)


def all_workers_agree(g, status, n=2 * WORKERS):
    """n probes on n connections (so on every worker, most likely) all
    answer `status`."""
    codes = [probe(g).status_code for _ in range(n)]
    assert codes == [status] * n, codes


def test_provider_failing_and_back(op, tmp, upstream):
    """Discovery answering 500, then the JWKS, then the provider's process
    gone: each turns readyz to 503 naming the provider (the store, LMDB,
    stays ok), and each recovery turns it back to 200."""
    o = op["op"]
    g = start_gateway(o, tmp, upstream, REFRESH)
    assert wait_readyz(g, 200)["provider"] == "ok"
    all_workers_agree(g, 200)

    for fault, step in (("discovery_down", "discovery"),
                        ("jwks_down", "jwks")):
        o.fault(fault, sticky=True, status=500)
        doc = wait_readyz(g, 503)
        assert doc["provider"] == "unavailable", doc
        assert doc["session_store"] == "ok", doc
        assert doc["reason"] == ("provider: the last %s fetch failed "
                                 "(http), retrying" % step), doc
        all_workers_agree(g, 503)
        assert g.loggrep(r"provider_error what=%s reason=\"answered HTTP "
                         r"500\" kind=http" % step), g.log()
        o.clear_faults()
        assert wait_readyz(g, 200)["provider"] == "ok"
        all_workers_agree(g, 200)

    # The provider's process stopped by its PID: no connection at all.
    port = o.port
    o.stop()
    doc = wait_readyz(g, 503)
    assert doc["reason"] == ("provider: the last discovery fetch failed "
                             "(connect), retrying"), doc
    # Back on the same port (the same issuer; new keys, as after a
    # rotation): ready again, and sign-in works with the new keys.
    op["op"] = o = OP(args=["--port", str(port)])
    o.config(redirect_uris=["%s/.auth/callback" % g.url])
    assert wait_readyz(g, 200)["provider"] == "ok"
    all_workers_agree(g, 200)
    s, r = sign_in(g, "erin@contoso.com")
    assert s.get(g.url + "/private", timeout=5).status_code == 200
    assert g.loggrep(r"provider_recovered issuer=\S+ after_failures=\d+")


def test_provider_down_at_start(op, tmp, upstream):
    """A provider that never answered: 503 from the start (gatehouse
    serves anyway: healthz, anonymous routes), 200 once it answers."""
    o = op["op"]
    o.fault("discovery_down", sticky=True, status=500)
    port = free_port()
    o.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    g = Gatehouse(tmp, gateway_lines(o, tmp, port, upstream.url), port=port)
    assert g.loggrep(r"provider_error what=discovery", timeout=10), g.log()
    doc = wait_readyz(g, 503)
    assert doc == {"status": "unavailable", "provider": "unavailable",
                   "session_store": "ok",
                   "reason": "provider: the last discovery fetch failed "
                             "(http), retrying"}, doc
    assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
    o.clear_faults()
    wait_readyz(g, 200)
    all_workers_agree(g, 200)


def test_store_and_provider_each_named(op, tmp, upstream):
    """Redis stopped by its PID: 503 naming the session store only; the
    provider failing too: both named; Redis back: the provider only;
    provider back: 200.  (test_redis_store.py has what Redis going away
    does to requests; this is what readyz says about it.)"""
    o = op["op"]
    redis = RedisServer(tmp)
    try:
        g = start_gateway(o, tmp, upstream, REFRESH, store=redis.url)
        wait_readyz(g, 200)
        redis.stop()
        doc = wait_readyz(g, 503)
        assert doc == {"status": "unavailable", "provider": "ok",
                       "session_store": "unavailable",
                       "reason": "session_store: not answering"}, doc
        all_workers_agree(g, 503)
        o.fault("discovery_down", sticky=True, status=500)
        end = time.monotonic() + 30
        while doc["provider"] == "ok":
            assert time.monotonic() < end, g.log()[-3000:]
            time.sleep(0.1)
            doc = wait_readyz(g, 503)
        assert doc["reason"] == ("provider: the last discovery fetch failed "
                                 "(http), retrying; session_store: not "
                                 "answering"), doc
        redis.start()
        end = time.monotonic() + 30
        while doc["session_store"] != "ok":
            assert time.monotonic() < end, g.log()[-3000:]
            time.sleep(0.1)
            doc = wait_readyz(g, 503)
        assert doc["provider"] == "unavailable", doc
        assert doc["reason"].startswith("provider: "), doc
        o.clear_faults()
        wait_readyz(g, 200)
        all_workers_agree(g, 200)
    finally:
        redis.stop()
